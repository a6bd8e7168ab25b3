"""Export the test-time network of a run (E_h, E_l and the fusion module) to ONNX or TorchScript.

The exported model maps preprocessed views to features; super-resolution and down-sampling stay
outside it. Inputs, float32 (B, 3, H, W) with H x W = the run's `input.height` x `input.width`
and any batch size B:

- `hr_view`: what E_h reads; `lr_view`: what E_l reads. Each view is the image resized to H x W
  (bicubic, antialiased), scaled to [0, 1] and normalised with the ImageNet mean
  (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) per channel (drfm.utils.imagenet).
- resolution "low" (query x is low-resolution): hr_view from SR(x), the run's SR backend
  upscaling x by `preprocess.factor`; lr_view from x itself.
- resolution "high" (x is high-resolution): hr_view from x itself; lr_view from DS(x), x
  down-sampled by `preprocess.factor` (bicubic, antialiased: drfm.data.downsampling.downsample).
- a run without a fusion module reads `hr_view` only (the model has that one input); for the
  Cluster Contrast baseline hr_view is the image itself at either resolution.

Output `features`: (B, D) float32, L2-normalised. The file carries these instructions as JSON
metadata: ONNX metadata property "drfm", TorchScript extra file "drfm.json".
ONNX export uses PyTorch's TorchScript-based exporter (`dynamo=False`, opset 17) and needs the
`onnx` package (`pip install 'drfm[export]'`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from drfm import __version__
from drfm.api import ReIDModel
from drfm.engine.test_time import FeatureNet
from drfm.errors import OptionError, option
from drfm.utils.imagenet import IMAGENET_MEAN, IMAGENET_STD
from drfm.utils.io import atomic_path

FORMATS = ("onnx", "torchscript")
EXPORT_RESOLUTIONS = ("low", "high")
ONNX_OPSET = 17
METADATA_KEY = "drfm"
TORCHSCRIPT_METADATA_FILE = "drfm.json"


def input_names(network: FeatureNet) -> list[str]:
    """The exported model's input names, in order."""
    return ["hr_view", "lr_view"] if network.uses_lr_view else ["hr_view"]


def export_metadata(model: ReIDModel, resolution: str) -> dict:
    """What a caller of the exported model must know: inputs, their preprocessing, the output."""
    config, pre = model.config, model.config["preprocess"]
    height, width = config["input"]["height"], config["input"]["width"]
    if not model.network.model.uses_twins:
        views = {"hr_view": "x"}
    elif resolution == "low":
        views = {"hr_view": f"SR(x): {pre['sr_backend']} x{pre['factor']} super-resolution", "lr_view": "x"}
    else:
        views = {"hr_view": "x", "lr_view": f"DS(x): bicubic antialiased x{pre['factor']} down-sampling"}
    names = input_names(model.network)
    return {
        "drfm_version": __version__,
        "method": config["method"],
        "resolution": resolution,
        "inputs": {name: {"shape": ["batch", 3, height, width], "from": views[name]} for name in names},
        "preprocess": {"resize": [height, width], "interpolation": "bicubic, antialiased",
                       "scale": "pixel / 255", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "output": {"features": {"shape": ["batch", model.feature_dim], "l2_normalised": True}},
        "checkpoint_fingerprint": model.fingerprint,
    }


def _onnx(network: FeatureNet, example: tuple[torch.Tensor, ...], out: Path, metadata: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise OptionError(f"{option('fmt')} onnx needs the onnx package: pip install 'drfm[export]'") from None
    names = input_names(network)
    axes = {name: {0: "batch"} for name in [*names, "features"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation and tracer notes
        torch.onnx.export(network, example, str(out), input_names=names, output_names=["features"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata, sort_keys=True)
    onnx.save(proto, str(out))


def _torchscript(network: FeatureNet, example: tuple[torch.Tensor, ...], out: Path, metadata: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape-dependent padding (the shape is fixed)
        traced = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(traced, str(out),
                       _extra_files={TORCHSCRIPT_METADATA_FILE: json.dumps(metadata, sort_keys=True)})


def export_model(model: ReIDModel, fmt: str, out: str | os.PathLike, resolution: str = "low") -> Path:
    """Write `model`'s test-time network for `resolution` inputs as `fmt` ("onnx" | "torchscript")
    to `out` (atomically, on `model.device`'s copy traced with a batch of 2, in float32: no
    autocast in the graph); returns the path."""
    if fmt not in FORMATS:
        raise OptionError(f"{option('fmt')} {fmt}: not one of {', '.join(FORMATS)}")
    if resolution not in EXPORT_RESOLUTIONS:
        raise OptionError(f"{option('resolution')} {resolution}: not one of {', '.join(EXPORT_RESOLUTIONS)}")
    network = model.network.eval()
    height, width = model.config["input"]["height"], model.config["input"]["width"]
    example = tuple(torch.zeros(2, 3, height, width, device=model.device) for _ in input_names(network))
    metadata = export_metadata(model, resolution)
    out = Path(out)
    mixed_precision, network.model.mixed_precision = network.model.mixed_precision, False  # a float32 graph
    try:
        with atomic_path(out) as tmp, torch.no_grad():
            (_onnx if fmt == "onnx" else _torchscript)(network, example, tmp, metadata)
    finally:
        network.model.mixed_precision = mixed_precision
    return out
