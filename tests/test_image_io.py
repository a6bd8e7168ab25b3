"""load_image: every image becomes 8-bit RGB; 16-bit, 32-bit and float grey images are scaled,
not clipped to white (checked pixel by pixel against hand computations), also through an MLR build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.cli import main
from drfm.data.image_io import load_image
from drfm.errors import DrfmError


def save(array: np.ndarray, path: Path) -> Path:
    """Write `array` with PIL (mode from its dtype: uint16 -> I;16, int32 -> I, float32 -> F)."""
    Image.fromarray(array).save(path)
    return path


def grey(path: Path) -> np.ndarray:
    """load_image(path) as an (H, W) uint8 array, after checking that it is RGB with R = G = B."""
    image = load_image(path)
    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()
    return pixels[..., 0]


# 16-bit: v8 = round(v16 / 257): 1000 / 257 = 3.89 -> 4, 30000 / 257 = 116.7 -> 117, 65535 -> 255.
TINY_16 = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
TINY_8 = [[0, 4], [117, 255]]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grey_matches_hand_computation(tmp_path, suffix):
    path = save(TINY_16, tmp_path / f"tiny{suffix}")
    with Image.open(path) as image:
        assert image.mode.startswith("I;16")
    assert grey(path).tolist() == TINY_8


def test_two_different_16bit_images_stay_different(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 32).reshape(64, 32).astype(np.uint16)
    first = grey(save(ramp, tmp_path / "ramp.png"))
    second = grey(save(ramp // 2, tmp_path / "half.png"))
    assert not np.array_equal(first, second)
    assert first.min() == 0 and first.max() == 255 and second.max() == 127  # 32767 / 257 = 127.498 -> 127
    assert len(np.unique(first)) == 256 and not (first == 255).all()


def test_big_endian_16bit_tiff(tmp_path):
    path = save(TINY_16.astype(">u2"), tmp_path / "big.tif")
    with Image.open(path) as image:
        assert image.mode == "I;16B"
    assert grey(path).tolist() == TINY_8


@pytest.mark.parametrize(
    "values, expected",
    [
        ([[0, 100], [200, 255]], [[0, 100], [200, 255]]),  # 8-bit data in a 32-bit image: kept
        ([[0, 1000], [30000, 65535]], TINY_8),  # 16-bit data: / 257
        ([[-10, 0], [90, 100000]], [[0, 0], [0, 255]]),  # other ranges: [min, max] -> [0, 255]
        ([[-100, 0], [100, 1_000_000_000]], [[0, 0], [0, 255]]),
    ],
)
def test_32bit_integer_grey(tmp_path, values, expected):
    path = save(np.array(values, dtype=np.int32), tmp_path / "int.tif")
    with Image.open(path) as image:
        assert image.mode == "I"
    assert grey(path).tolist() == expected


def test_32bit_integer_stretch_hand_computation(tmp_path):
    # [min, max] = [-1000, 99000]: (v + 1000) * 255 / 100000 -> 0, 2.55 -> 3, 127.5 -> 128, 255
    path = save(np.array([[-1000, 0], [49000, 99000]], dtype=np.int32), tmp_path / "wide.tif")
    assert grey(path).tolist() == [[0, 3], [128, 255]]


@pytest.mark.parametrize(
    "values, expected",
    [
        ([[0.0, 0.25], [0.5, 1.0]], [[0, 64], [128, 255]]),  # [0, 1]: * 255 (63.75 -> 64, 127.5 -> 128)
        ([[0.0, 10.4], [200.5, 255.0]], [[0, 10], [201, 255]]),  # [0, 255]: kept, rounded half up
        ([[-1.0, 0.0], [1.0, 3.0]], [[0, 64], [128, 255]]),  # otherwise [min, max] -> [0, 255]
        ([[7.0, 7.0], [7.0, 7.0]], [[7, 7], [7, 7]]),
    ],
)
def test_float_grey(tmp_path, values, expected):
    path = save(np.array(values, dtype=np.float32), tmp_path / "float.tif")
    with Image.open(path) as image:
        assert image.mode == "F"
    assert grey(path).tolist() == expected


def test_float_nan_is_one_line_error(tmp_path):
    path = save(np.array([[0.0, np.nan]], dtype=np.float32), tmp_path / "nan.tif")
    with pytest.raises(DrfmError) as error:
        load_image(path)
    assert str(error.value) == f"{path}: float image has NaN or infinite pixel values"


def test_8bit_images_are_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 3, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(load_image(save(rgb, tmp_path / "rgb.png"))), rgb)
    grey8 = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    assert grey(save(grey8, tmp_path / "grey.png")).tolist() == grey8.tolist()
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DrfmError, match="broken.png: not a readable image"):
        load_image(tmp_path / "broken.png")


def test_16bit_images_through_an_mlr_build(tmp_path, capsys):
    root = tmp_path / "crops"
    root.mkdir()
    save(TINY_16, root / "tiny.png")
    save((np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369), root / "steps.png")  # 4369 k -> 17 k
    out = tmp_path / "out"
    assert main(["prepare", "mlr", "--dataset", "folder", "--root", str(root), "--out", str(out)]) == 0
    entries = {e["source"]: e for e in json.loads((out / "manifest.json").read_text())["entries"]}
    with Image.open(out / entries["tiny.png"]["path"]) as image:
        assert image.mode == "RGB" and np.asarray(image)[..., 1].tolist() == TINY_8
    with Image.open(out / entries["steps.png"]["path"]) as image:
        assert np.asarray(image)[..., 2].tolist() == (np.arange(16).reshape(4, 4) * 17).tolist()
