"""Resolution cache (SLR/SHR) and SR backends: keys, sizes, resumption, errors, and real SR quality."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.cli import flag_of
from drfm.commands import prepare_sr as prepare_sr_command
from drfm.data.image_io import load_image
from drfm.data.records import DatasetSplits, ImageRecord
from drfm.data.downsampling import downsample
from drfm.data.resolution import (
    cache_key,
    cached_file,
    prepare_resolution_views,
    resolution_sources,
)
from drfm.data.sr_backends import BicubicBackend, SRBackend, get_sr_backend, sr_backend_names
from drfm.errors import DrfmError
from fixtures_layouts import write_image

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def solid(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    """Write a constant-colour PNG of `size` (width, height); return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


class CountingBackend(SRBackend):
    """Bicubic x`scale` that counts calls and images, and raises on call number `fail_on_call`."""

    name = "counting"
    version = "1"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.images = 0
        self.fail_on_call = fail_on_call

    def upscale(self, images: list[Image.Image], scale: int = 4) -> list[Image.Image]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("interrupted")
        self.images += len(images)
        return BicubicBackend().upscale(images, scale)


def cache_files(cache: Path) -> list[Path]:
    """Every file under `cache` except the JSON indexes, sorted."""
    return sorted(p for p in cache.rglob("*") if p.suffix != ".json" and p.is_file())


# cache keys and layout


def test_cache_key_depends_on_content_method_version_and_factor():
    base = cache_key(b"abc", "span", "v1", 4)
    assert base == cache_key(b"abc", "span", "v1", 4)
    variants = {
        cache_key(b"abd", "span", "v1", 4),
        cache_key(b"abc", "bicubic", "v1", 4),
        cache_key(b"abc", "span", "v2", 4),
        cache_key(b"abc", "span", "v1", 2),
    }
    assert base not in variants and len(variants) == 4
    assert len(base) == 64 and int(base, 16) >= 0


def test_cached_file_layout(tmp_path):
    key = "ab" + "0" * 62
    assert cached_file(tmp_path, "shr", "span", key) == tmp_path / "shr" / "span" / "ab" / f"{key}.png"


def test_views_are_stored_under_their_key(tmp_path):
    src = write_image(tmp_path / "data" / "a.png", (8, 16))
    out = prepare_resolution_views([src], "slr", tmp_path / "cache", progress=False)
    key = cache_key(src.read_bytes(), "bicubic", "pil-bicubic-antialias", 4)
    assert out == {str(src): tmp_path / "cache" / "slr" / "bicubic" / key[:2] / f"{key}.png"}
    index = json.loads((tmp_path / "cache" / "slr-bicubic-x4-index.json").read_text())
    assert index == {str(src): str(out[str(src)])}


# sizes and values


@pytest.mark.parametrize(
    "size, expected",
    [((48, 128), (12, 32)), ((10, 6), (2, 2)), ((13, 7), (3, 2)), ((3, 2), (1, 1)), ((1, 1), (1, 1))],
)
def test_slr_size_is_rounded_quarter_at_least_one(tmp_path, size, expected):
    src = solid(tmp_path / "hr.png", size, (10, 200, 30))
    out = prepare_resolution_views([ImageRecord(src, 0, 0)], "slr", tmp_path / "cache", progress=False)
    slr = load_image(out[str(src)])
    assert slr.size == expected
    assert np.all(np.asarray(slr) == (10, 200, 30))  # bicubic of a constant is the constant


def test_slr_is_antialiased(tmp_path):
    # 1-pixel vertical stripes black/white: antialiased x4 down-sampling averages them to mid-grey,
    # point sampling would give pure black or pure white.
    stripes = np.zeros((16, 16, 3), dtype=np.uint8)
    stripes[:, 1::2] = 255
    small = np.asarray(downsample(Image.fromarray(stripes), 4), dtype=float)
    assert small.shape == (4, 4, 3)
    assert np.all(np.abs(small[:, 1:-1] - 127.5) < 20)


def test_bicubic_shr_is_four_times_larger(tmp_path):
    srcs = [solid(tmp_path / "a.png", (12, 32), (0, 0, 255)), solid(tmp_path / "b.png", (5, 3), (7, 8, 9))]
    out = prepare_resolution_views(srcs, "shr", tmp_path / "cache", backend="bicubic", progress=False)
    a, b = load_image(out[str(srcs[0])]), load_image(out[str(srcs[1])])
    assert a.size == (48, 128) and b.size == (20, 12)
    assert np.all(np.asarray(b) == (7, 8, 9))
    assert out[str(srcs[0])].parent.parent.name == "bicubic"


# caching and resumption


def test_second_run_computes_nothing(tmp_path):
    srcs = [write_image(tmp_path / f"{i}.png") for i in range(5)]
    backend = CountingBackend()
    first = prepare_resolution_views(srcs, "shr", tmp_path / "cache", backend=backend, batch_size=2, progress=False)
    assert (backend.calls, backend.images) == (3, 5)
    mtimes = {p: p.stat().st_mtime_ns for p in first.values()}
    second = prepare_resolution_views(srcs, "shr", tmp_path / "cache", backend=backend, batch_size=2, progress=False)
    assert second == first
    assert (backend.calls, backend.images) == (3, 5)
    assert {p: p.stat().st_mtime_ns for p in second.values()} == mtimes


def test_changed_source_is_recomputed_alone(tmp_path):
    srcs = [write_image(tmp_path / f"{i}.png") for i in range(3)]
    backend = CountingBackend()
    before = prepare_resolution_views(srcs, "shr", tmp_path / "cache", backend=backend, progress=False)
    solid(srcs[1], (8, 16), (1, 2, 3))
    after = prepare_resolution_views(srcs, "shr", tmp_path / "cache", backend=backend, progress=False)
    assert backend.images == 4
    assert after[str(srcs[0])] == before[str(srcs[0])] and after[str(srcs[2])] == before[str(srcs[2])]
    assert after[str(srcs[1])] != before[str(srcs[1])]
    assert np.all(np.asarray(load_image(after[str(srcs[1])])) == (1, 2, 3))


def test_same_content_twice_is_computed_once(tmp_path):
    a = solid(tmp_path / "a.png", (4, 8), (5, 5, 5))
    b = solid(tmp_path / "b.png", (4, 8), (5, 5, 5))
    backend = CountingBackend()
    out = prepare_resolution_views([a, b, a], "shr", tmp_path / "cache", backend=backend, progress=False)
    assert backend.images == 1 and len(out) == 2 and out[str(a)] == out[str(b)]


def test_interrupted_run_leaves_complete_files_and_resumes(tmp_path):
    srcs = [write_image(tmp_path / f"{i}.png") for i in range(7)]
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="interrupted"):
        prepare_resolution_views(srcs, "shr", cache, backend=CountingBackend(fail_on_call=3), batch_size=2,
                                 progress=False)
    done = cache_files(cache)
    assert len(done) == 4 and all(p.suffix == ".png" for p in done)
    assert all(load_image(p).size == (32, 64) for p in done)
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    resumed = CountingBackend()
    out = prepare_resolution_views(srcs, "shr", cache, backend=resumed, batch_size=2, progress=False)
    assert resumed.images == 3
    assert sorted(out.values()) == cache_files(cache) and len(out) == 7


def test_crash_while_writing_leaves_no_file_that_counts(tmp_path, monkeypatch):
    src = write_image(tmp_path / "a.png")
    cache = tmp_path / "cache"
    real_save = Image.Image.save

    def truncated_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG\r\n")  # a few bytes, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", truncated_save)
    with pytest.raises(KeyboardInterrupt):
        prepare_resolution_views([src], "slr", cache, progress=False)
    assert cache_files(cache) == []
    monkeypatch.setattr(Image.Image, "save", real_save)
    out = prepare_resolution_views([src], "slr", cache, progress=False)
    assert load_image(out[str(src)]).size == (2, 4)


def test_leftover_temporary_from_a_killed_run_does_not_count(tmp_path):
    src = write_image(tmp_path / "a.png")
    cache = tmp_path / "cache"
    final = prepare_resolution_views([src], "slr", cache, progress=False)[str(src)]
    final.unlink()
    stale = final.parent / f".{final.name}.x1y2.tmp"  # what atomic_path leaves after a SIGKILL
    stale.mkdir()
    (stale / final.name).write_bytes(b"\x89PNG")
    out = prepare_resolution_views([src], "slr", cache, progress=False)
    assert out[str(src)] == final and load_image(final).size == (2, 4)


# errors


def test_bad_image_names_the_file(tmp_path):
    good = write_image(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DrfmError, match="bad.png"):
        prepare_resolution_views([good, bad], "slr", tmp_path / "cache", progress=False)


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(DrfmError, match="gone.png: image file does not exist"):
        prepare_resolution_views([tmp_path / "gone.png"], "shr", tmp_path / "cache", progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "mlr"}, "unknown resolution view 'mlr'"),
    ({"kind": "slr", "factor": 0}, "factor 0"),
    ({"kind": "shr", "batch_size": 0}, "batch_size 0"),
    ({"kind": "shr", "backend": "nope"}, "unknown SR backend 'nope'"),
])
def test_bad_options(tmp_path, kwargs, message):
    src = write_image(tmp_path / "a.png")
    with pytest.raises(DrfmError, match=message):
        prepare_resolution_views([src], cache_dir=tmp_path / "cache", progress=False, **kwargs)


def test_registry_names_and_bicubic_rejects_weights(tmp_path):
    assert {"bicubic", "span", "swin2sr"} <= set(sr_backend_names())
    with pytest.raises(DrfmError, match="takes no weights"):
        get_sr_backend("bicubic", weights=str(tmp_path))


def fake_transformers(error: Exception) -> types.ModuleType:
    """A stand-in `transformers` module whose from_pretrained raises `error` (no network touched)."""

    class Loader:
        @classmethod
        def from_pretrained(cls, source, **kwargs):
            raise error

    module = types.ModuleType("transformers")
    module.Swin2SRForImageSuperResolution = Loader
    module.Swin2SRImageProcessor = Loader
    return module


def test_swin2sr_offline_without_local_weights_says_how_to_get_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(OSError("couldn't connect to huggingface.co")))
    with pytest.raises(DrfmError) as info:
        get_sr_backend("swin2sr")
    message = str(info.value)
    assert "\n" not in message
    assert "huggingface-cli download caidas/swin2SR-classical-sr-x4-64" in message and "pass weights DIR" in message
    assert "pass --weights DIR" in info.value.render(flag_of)  # as the command line shows it


def test_swin2sr_without_transformers_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(DrfmError, match=r"pip install 'drfm\[sr\]'"):
        get_sr_backend("swin2sr")


def test_swin2sr_bad_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(OSError("no config.json")))
    with pytest.raises(DrfmError, match="weights folder does not exist"):
        get_sr_backend("swin2sr", weights=str(tmp_path / "absent"))
    with pytest.raises(DrfmError, match="not a Swin2SR model folder"):
        get_sr_backend("swin2sr", weights=str(tmp_path))


def test_swin2sr_from_a_local_folder_keeps_order_and_sizes(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.Swin2SRConfig(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=4,
                                        image_size=16, mlp_ratio=1.0, upsampler="pixelshuffle")
    transformers.Swin2SRForImageSuperResolution(config).save_pretrained(tmp_path)
    transformers.Swin2SRImageProcessor(pad_size=4).save_pretrained(tmp_path)
    backend = get_sr_backend("swin2sr", weights=str(tmp_path))
    assert backend.version.startswith("local-")
    images = [Image.new("RGB", size, (i * 60, 0, 0)) for i, size in enumerate([(12, 32), (5, 7), (12, 32)])]
    out = backend.upscale(images)
    assert [o.size for o in out] == [(48, 128), (20, 28), (48, 128)]
    with pytest.raises(DrfmError, match="only upscales x4"):
        backend.upscale(images, scale=2)


def test_span_without_its_packages_says_what_to_install(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    def find_spec(name, *args):
        return None if name == "ncnn" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(DrfmError, match=r"pip install 'drfm\[sr-span\]'"):
        get_sr_backend("span")


def test_span_weights_folder_without_model(tmp_path):
    pytest.importorskip("ncnn")
    with pytest.raises(DrfmError, match="spanx4_ch48.param: SPAN weights file does not exist"):
        get_sr_backend("span", weights=str(tmp_path))


# dataset driver and command line


def test_resolution_sources_are_the_training_images_by_camera_and_by_lr_paths(tmp_path):
    a, b, c = (ImageRecord(tmp_path / f"{n}.png", 1, cam) for n, cam in (("a", 0), ("b", 1), ("c", 0)))
    by_camera = DatasetSplits("x", tmp_path, train=[a, b, a], query=[b], gallery=[c], lr_cameras=(1,))
    assert resolution_sources(by_camera) == ([a], [b])  # test images are not cached
    by_list = DatasetSplits("x", tmp_path, train=[a, b, c], query=[], gallery=[], meta={"lr_paths": [c.path]})
    assert resolution_sources(by_list) == ([a, b], [c])
    assert by_list.low_resolution_mask([c, a, c]).tolist() == [True, False, True]
    assert by_camera.low_resolution_mask([]).shape == (0,)


def prepare_sr(argv: list[str]) -> int:
    """Parse `argv` as `drfm prepare sr` options and run the command."""
    parser = argparse.ArgumentParser()
    prepare_sr_command.add_arguments(parser)
    return prepare_sr_command.run(parser.parse_args(argv))


def test_prepare_sr_command_on_a_folder_dataset(tmp_path, capsys):
    root = tmp_path / "crops"
    hr = [write_image(root / f"hr{i}.png", (32, 64)) for i in range(3)]
    lr = [write_image(root / f"lr{i}.png", (8, 16)) for i in range(2)]
    cache = tmp_path / "cache"
    assert prepare_sr(["--dataset", "folder", "--root", str(root), "--cache", str(cache), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "SLR: 3 HR images" in printed and "SHR: 2 LR images" in printed
    slr = json.loads((cache / "slr-bicubic-x4-index.json").read_text())
    shr = json.loads((cache / "shr-bicubic-x4-index.json").read_text())
    assert sorted(slr) == sorted(map(str, hr)) and sorted(shr) == sorted(map(str, lr))
    assert {load_image(p).size for p in slr.values()} == {(8, 16)}
    assert {load_image(p).size for p in shr.values()} == {(32, 64)}


def test_prepare_sr_command_errors(tmp_path):
    root = tmp_path / "crops"
    write_image(root / "hr.png", (32, 64))
    common = ["--dataset", "folder", "--root", str(root), "--cache", str(tmp_path / "c"), "--no-progress"]
    with pytest.raises(DrfmError, match="no low-resolution image"):
        prepare_sr(common + ["--views", "shr"])
    with pytest.raises(DrfmError, match="--views slr,big"):
        prepare_sr(common + ["--views", "slr,big"])
    assert not (tmp_path / "c").exists()


# real super-resolution quality


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR in dB of two same-size 8-bit RGB images."""
    mse = np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_span_beats_bicubic_on_real_viper_images():
    pytest.importorskip("ncnn")
    viper = SHARED_DATASETS / "VIPeR" / "cam_a"
    if not viper.is_dir():
        pytest.skip("VIPeR not present under shared/datasets")
    try:
        span = get_sr_backend("span")
    except DrfmError as exc:
        pytest.skip(str(exc))
    originals = [load_image(p) for p in sorted(viper.glob("*.bmp"))[:8]]
    small = [downsample(im, 4) for im in originals]
    learned = [psnr(o, x) for o, x in zip(originals, span.upscale(small), strict=True)]
    bicubic = [psnr(o, x) for o, x in zip(originals, get_sr_backend("bicubic").upscale(small), strict=True)]
    gain = np.array(learned) - np.array(bicubic)
    # Measured on these 8 images: +1.74 dB on average, +0.67 dB at worst (127 images: +1.74 / +0.59).
    assert gain.mean() > 0.5 and np.all(gain > 0)
