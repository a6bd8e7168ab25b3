"""Test-time features (SPEC: Test-time features): the one path from images to features.

`drfm evaluate` and `drfm extract` (a dataset's test split), the Python API (`drfm.load`), `drfm
search` and `drfm export` all embed through `TestTimeEncoder`:

- a low-resolution image x: hr_view = SR(x) (the run's `preprocess.sr_backend`, upscaling by
  `preprocess.factor`), lr_view = x;
- a high-resolution image x: hr_view = x, lr_view = DS(x) (bicubic, antialiased, by the factor);
- both views resized (bicubic) to `input.height` x `input.width` and ImageNet-normalised
  (drfm.data.transforms.test_transform);
- feature: CRFF(E_h(hr_view), E_l(lr_view)), L2-normalised; without a fusion module E_h(hr_view);
  the single-encoder Cluster Contrast baseline reads every image as it is (no SR, no DS).

Which images are low-resolution is said by the caller: at evaluation the dataset's record of each
image (its LR camera, the MLR build's manifest, or the folder reader's height rule); in the API
the user's `resolution`, whose "auto" is the same height rule
(drfm.data.image_io.is_low_resolution). DS runs in memory. SR runs in memory too, except that
`embed_files` may keep its outputs in a content-addressed cache folder (drfm.data.resolution, the
one training's SHR twins live in): a cached SR image is the PNG of the same pixels, so the
features are the same with or without the cache; only the SR work is saved.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from drfm.data.downsampling import downsample
from drfm.data.image_io import load_image
from drfm.data.resolution import prepare_resolution_views
from drfm.data.sr_backends import SRBackend, get_sr_backend
from drfm.data.transforms import test_transform
from drfm.models.dual_model import DualResolutionModel


class FeatureNet(nn.Module):
    """The test-time network on preprocessed views: (hr_view, lr_view) -> features.

    `hr_view`: (B, 3, H, W) batch E_h reads; `lr_view`: (B, 3, H, W) batch E_l reads (both
    test_transform outputs). Returns (B, D) L2-normalised features. A model without a fusion
    module reads only `hr_view` (`uses_lr_view` is False; pass None or leave it out).
    """

    def __init__(self, model: DualResolutionModel) -> None:
        super().__init__()
        self.model = model

    @property
    def uses_lr_view(self) -> bool:
        """Whether the features depend on `lr_view` (False without a fusion module)."""
        return self.model.fusion is not None

    def forward(self, hr_view: torch.Tensor, lr_view: torch.Tensor | None = None) -> torch.Tensor:
        hr_features = self.model.encode_hr(hr_view)
        if not self.uses_lr_view:
            return hr_features
        return self.model.fuse(hr_features, self.model.encode_lr(lr_view))


class _ImageFiles(Dataset):
    """Item i: (the RGB PIL image at paths[i], its cached SR image or None), decoded in DataLoader
    workers when there are any; `upscaled`: {str(path): cached SR file}."""

    def __init__(self, paths: Sequence[str | os.PathLike], upscaled: dict[str, Path]) -> None:
        self.paths, self.upscaled = list(paths), upscaled

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, Image.Image | None]:
        cached = self.upscaled.get(str(self.paths[index]))
        return load_image(self.paths[index]), None if cached is None else load_image(cached)


def _as_list(batch: list) -> list:
    """DataLoader collate function that keeps a batch of PIL images as a list."""
    return batch


class TestTimeEncoder:
    """A trained model's test-time features of RGB images (module docstring).

    `model`: the run's DualResolutionModel (put in eval mode on `device`); `config`: its
    configuration (`input` size, `preprocess` SR backend, weights and factor).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, model: DualResolutionModel, config: dict, device: torch.device | str = "cpu") -> None:
        pre = config["preprocess"]
        self.device = torch.device(device)
        self.network = FeatureNet(model).to(self.device).eval()
        self.factor = int(pre["factor"])
        self.sr_name, self.sr_weights = pre["sr_backend"], pre["sr_weights"]
        self.transform = test_transform(config["input"]["height"], config["input"]["width"])
        self._sr: SRBackend | None = None

    @property
    def feature_dim(self) -> int:
        """D, the length of a feature vector."""
        return self.network.model.out_dim

    def sr_backend(self) -> SRBackend:
        """The run's SR backend, built on first use."""
        if self._sr is None:
            self._sr = get_sr_backend(self.sr_name, weights=self.sr_weights, device=str(self.device))
        return self._sr

    def views(self, images: Sequence[Image.Image], low: np.ndarray,
              upscaled: Sequence[Image.Image | None] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The preprocessed (hr_view, lr_view) batches, (N, 3, H, W) each, of RGB `images`.

        `low[i]`: image i is low-resolution (hr_view = SR(x), lr_view = x) or not (hr_view = x,
        lr_view = DS(x)); `upscaled[i]`, when given, is SR(x) already made. A single-encoder model
        reads every image as it is. lr_view is None when the network does not read it.
        """
        low = np.asarray(low, dtype=bool)
        hr_images, lr_images = list(images), list(images)
        if self.network.model.uses_twins:
            made = [None] * len(images) if upscaled is None else list(upscaled)
            missing = [i for i in np.flatnonzero(low) if made[i] is None]
            if missing:
                new = self.sr_backend().upscale([images[i] for i in missing], scale=self.factor)
                for i, image in zip(missing, new, strict=True):
                    made[i] = image
            for i in np.flatnonzero(low):
                hr_images[i] = made[i]
            if self.network.uses_lr_view:
                for i in np.flatnonzero(~low):
                    lr_images[i] = downsample(images[i], self.factor)
        hr = torch.stack([self.transform(image) for image in hr_images])
        lr = torch.stack([self.transform(image) for image in lr_images]) if self.network.uses_lr_view else None
        return hr, lr

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image], low: np.ndarray,
              upscaled: Sequence[Image.Image | None] | None = None) -> torch.Tensor:
        """(N, D) float32 CPU tensor of L2-normalised features of RGB `images`, one batch;
        `low`: (N,) bool, which images are low-resolution; `upscaled`: as in `views`."""
        if not len(images):
            return torch.empty(0, self.feature_dim)
        hr, lr = self.views(images, low, upscaled)
        lr = None if lr is None else lr.to(self.device)
        return self.network(hr.to(self.device), lr).float().cpu()

    def embed_files(self, paths: Sequence[str | os.PathLike], low: np.ndarray, batch_size: int = 128,
                    num_workers: int = 0, progress: bool = True, desc: str = "features",
                    sr_cache: str | os.PathLike | None = None) -> torch.Tensor:
        """(N, D) features of the image files `paths` (`low`: (N,) bool), `batch_size` at a time,
        decoded by `num_workers` DataLoader workers; with `sr_cache` (a folder) the SR images of
        the low-resolution files are read from and added to that cache (module docstring)."""
        low = np.asarray(low, dtype=bool)
        upscaled: dict[str, Path] = {}
        if sr_cache is not None and self.network.model.uses_twins and low.any():
            upscaled = prepare_resolution_views([paths[i] for i in np.flatnonzero(low)], "shr", sr_cache,
                                                backend=self.sr_backend(), factor=self.factor, progress=progress)
        loader = DataLoader(_ImageFiles(paths, upscaled), batch_size=batch_size, shuffle=False,
                            num_workers=num_workers, collate_fn=_as_list)
        parts, start = [], 0
        for items in tqdm(loader, desc=desc, disable=not progress, leave=False):
            images, cached = zip(*items)
            parts.append(self.embed(images, low[start:start + len(images)], cached))
            start += len(images)
        return torch.cat(parts) if parts else torch.empty(0, self.feature_dim)
