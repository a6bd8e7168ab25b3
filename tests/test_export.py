"""drfm export: ONNX (through onnxruntime) and TorchScript give PyTorch's features (max abs diff < 1e-4)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import drfm
from drfm.api import ReIDModel, as_pil_images
from drfm.cli import main
from drfm.errors import DrfmError
from drfm.export import export_model
from drfm.models.dual_model import DualResolutionModel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def onnx_features(path: Path, **inputs: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == sorted(inputs)
    return session.run(["features"], {name: t.numpy() for name, t in inputs.items()})[0]


@pytest.mark.parametrize("resolution", ["low", "high"])
def test_exported_models_give_the_pytorch_features_of_real_images(tiny, model, tmp_path, resolution):
    folder = "query" if resolution == "low" else "gallery"
    images = as_pil_images(sorted((tiny[0] / "images" / folder).rglob("*.png"))[:3])  # batch 3, traced with 2
    hr, lr = model.views(images, np.full(3, resolution == "low"))  # the documented preprocessing
    expected = model.embed(images, resolution).numpy()
    onnx_path = export_model(model, "onnx", tmp_path / "m.onnx", resolution)
    got = onnx_features(onnx_path, hr_view=hr, lr_view=lr)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    script = torch.jit.load(str(export_model(model, "torchscript", tmp_path / "m.pt", resolution)))
    with torch.no_grad():
        assert np.abs(script(hr, lr).numpy() - expected).max() < 1e-4
    metadata = json.loads({p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}["drfm"])
    assert metadata["resolution"] == resolution and metadata["inputs"]["hr_view"]["shape"] == ["batch", 3, 64, 32]
    assert ("SR(x)" in metadata["inputs"]["hr_view"]["from"]) == (resolution == "low")
    assert ("DS(x)" in metadata["inputs"]["lr_view"]["from"]) == (resolution == "high")
    extra = {"drfm.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra["drfm.json"]) == metadata


def test_a_model_without_fusion_exports_a_single_input(tiny, model, tmp_path):
    config = {**model.config, "method": "cluster_contrast", "model": {**model.config["model"], "fusion": "none"}}
    torch.manual_seed(0)
    net = DualResolutionModel("resnet18", pretrained=False, fusion="none", single_encoder=True, predictor=False)
    cc = ReIDModel(config, net, tiny[1] / "checkpoint.pt")
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        expected = net.eval().encode_hr(x).numpy()
    got = onnx_features(export_model(cc, "onnx", tmp_path / "cc.onnx"), hr_view=x)
    assert np.abs(got - expected).max() < 1e-4


def test_drfm_export_command_and_its_errors(tiny, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(tiny[1]), "--format", "onnx", "--out", str(out), "--resolution", "high"]) == 0
    assert out.is_file() and "inputs hr_view, lr_view of shape (B, 3, 64, 32)" in capsys.readouterr().out
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    assert main(["export", "--model", str(tmp_path / "future.pt"), "--format", "torchscript",
                 "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("drfm: error: ") and "format version" in err and "\n" not in err
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(DrfmError, match="^fmt tflite: not one of onnx, torchscript$"):  # the parameter's name
        export_model(drfm.load(tiny[1], device="cpu"), "tflite", tmp_path / "m.tflite")
