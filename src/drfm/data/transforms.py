"""Image transforms: resize to the network input, train-time augmentation, ImageNet normalisation."""

from __future__ import annotations

import torchvision.transforms as T

from drfm.utils.imagenet import IMAGENET_MEAN, IMAGENET_STD


def test_transform(height: int, width: int) -> T.Compose:
    """PIL image -> float tensor (3, height, width), bicubic resize, ImageNet-normalised."""
    return T.Compose([
        T.Resize((height, width), interpolation=T.InterpolationMode.BICUBIC, antialias=True),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def train_transform(height: int, width: int, pad: int = 10, flip: bool = True) -> T.Compose:
    """test_transform plus random horizontal flip and zero-pad-by-`pad` random crop (SPEC)."""
    steps = [T.Resize((height, width), interpolation=T.InterpolationMode.BICUBIC, antialias=True)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if pad > 0:
        steps += [T.Pad(pad), T.RandomCrop((height, width))]
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(steps)
