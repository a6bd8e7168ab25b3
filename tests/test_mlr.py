"""The MLR builder: protocol splits, per-image seeded down-sampling, determinism, atomicity, CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.cli import main
from drfm.commands import prepare_mlr
from drfm.data.downsampling import downsample
from drfm.data.mlr import build_mlr, draw_scale_factor
from drfm.data.registry import read_dataset
from drfm.errors import DrfmError
from fixtures_layouts import (
    HEIGHT,
    PETA_IMAGES,
    PETA_PEOPLE,
    WIDTH,
    write_caviar,
    write_ilids,
    write_image,
    write_market,
    write_threedpes,
    write_towncentre,
    write_viper,
)

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check_downsampled_sizes(out: Path, manifest: dict, width: int, height: int, lr_camera: int) -> None:
    """Only `lr_camera` is down-sampled, by r in {2,3,4}, to round(w/r) x round(h/r); files agree."""
    for entry in manifest["entries"]:
        r = entry["r"]
        if entry["camid"] == lr_camera:
            assert r in (2, 3, 4) and entry["resolution"] == "LR"
            assert entry["interpolation"] == "bicubic-antialias"
        else:
            assert r == 1 and entry["resolution"] == "HR" and entry["interpolation"] is None
        assert (entry["width"], entry["height"]) == (max(1, round(width / r)), max(1, round(height / r)))
        with Image.open(out / entry["path"]) as image:
            assert image.size == (entry["width"], entry["height"]) and image.format == "PNG"


def test_downsample_is_antialiased_bicubic():
    stripes = np.zeros((16, 16, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    small = np.asarray(downsample(Image.fromarray(stripes), 4))
    assert small.shape == (4, 4, 3)
    # Averaging 1-pixel black/white stripes gives mid grey; point sampling would give 0 or 255.
    assert np.all(np.abs(small[:, 1:3].astype(int) - 127.5) < 10)
    assert downsample(Image.new("RGB", (8, 16)), 3).size == (3, 5)
    assert downsample(Image.new("RGB", (1, 2)), 4).size == (1, 1)


def test_scale_factor_depends_only_on_seed_and_file():
    sources = [f"cam_b/{i:03d}_0.bmp" for i in range(60)]
    first = [draw_scale_factor(0, s, (2, 3, 4)) for s in sources]
    backwards = [draw_scale_factor(0, s, (2, 3, 4)) for s in reversed(sources)]
    assert first == backwards[::-1]
    assert set(first) == {2, 3, 4}
    assert first != [draw_scale_factor(1, s, (2, 3, 4)) for s in sources]


def test_viper_fixture_build_is_reproducible(tmp_path):
    root = write_viper(tmp_path / "VIPeR", people=20)
    first = build_mlr("viper", root, tmp_path / "a", seed=0, progress=False)
    second = build_mlr("viper", root, tmp_path / "b", seed=0, progress=False)
    assert first == second
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == first
    assert first["source_root"] == str(root.resolve()) and first["lr_cameras"] == [1]
    assert first["counts"] == {
        "train": {"images": 20, "ids": 10},
        "query": {"images": 10, "ids": 10},
        "gallery": {"images": 10, "ids": 10},
    }
    check_downsampled_sizes(tmp_path / "a", first, WIDTH, HEIGHT, lr_camera=1)
    assert {e["r"] for e in first["entries"] if e["camid"] == 1} == {2, 3, 4}
    assert {e["pid"] for e in first["entries"] if e["split"] == "query"} == set(range(10))
    order = ["train", "query", "gallery"]
    keys = [(order.index(e["split"]), e["pid"], e["camid"], e["source"]) for e in first["entries"]]
    assert keys == sorted(keys)


def test_other_seed_changes_factors(tmp_path):
    root = write_viper(tmp_path / "VIPeR", people=20)
    r0 = {e["source"]: e["r"] for e in build_mlr("viper", root, tmp_path / "a", seed=0, progress=False)["entries"]}
    r1 = {e["source"]: e["r"] for e in build_mlr("viper", root, tmp_path / "b", seed=1, progress=False)["entries"]}
    assert r0.keys() == r1.keys()
    assert any(r0[s] != r1[s] for s in r0)


def test_lr_camera_option_and_read_back(tmp_path):
    root = write_viper(tmp_path / "VIPeR", people=6)
    manifest = build_mlr("viper", root, tmp_path / "out", lr_camera=0, seed=0, progress=False)
    check_downsampled_sizes(tmp_path / "out", manifest, WIDTH, HEIGHT, lr_camera=0)
    splits = read_dataset("mlr", tmp_path / "out")
    assert splits.lr_cameras == (0,)
    assert {r.camid for r in splits.query} == {0} and {r.camid for r in splits.gallery} == {1}
    assert len(splits.train) == 6 and all(splits.meta["resolution"][r.path] == "LR" for r in splits.query)
    with pytest.raises(DrfmError, match="^lr_camera 5: dataset 'viper' has no such camera"):
        build_mlr("viper", root, tmp_path / "bad", lr_camera=5, progress=False)


def test_market_drops_distractors_and_reindexes(tmp_path):
    root = write_market(tmp_path / "market", train_pids=(2, 7), test_pids=(1, 3), cameras=(1, 2, 3))
    manifest = build_mlr("market1501", root, tmp_path / "out", progress=False)
    entries = manifest["entries"]
    assert {e["pid"] for e in entries if e["split"] == "train"} == {0, 1}
    query = [e for e in entries if e["split"] == "query"]
    gallery = [e for e in entries if e["split"] == "gallery"]
    # LR camera 0 (c1): query = the c1 images of persons 1 and 3 from query/ and bounding_box_test/.
    assert {e["camid"] for e in query} == {0} and len(query) == 4
    assert {e["pid"] for e in query} == {e["pid"] for e in gallery} == {0, 1}
    assert len(gallery) == 8 and {e["camid"] for e in gallery} == {1, 2}
    assert not any(e["source"].startswith("bounding_box_test/0000_") for e in entries)
    assert len({e["path"] for e in entries}) == len(entries)


def test_caviar_is_copied_without_downsampling(tmp_path):
    root = write_caviar(tmp_path / "CAVIAR4REID")
    manifest = build_mlr("caviar", root, tmp_path / "out", progress=False)
    assert manifest["lr_cameras"] == [1] and manifest["scale_factors"] == []
    assert all(e["r"] == 1 and (e["width"], e["height"]) == (WIDTH, HEIGHT) for e in manifest["entries"])
    assert all((e["resolution"] == "LR") == (e["camid"] == 1) for e in manifest["entries"])
    with pytest.raises(DrfmError, match="already has real LR cameras"):
        build_mlr("caviar", root, tmp_path / "other", lr_camera=1, progress=False)


def test_folder_lr_by_height(tmp_path):
    root = tmp_path / "crops"
    write_image(root / "small.png", size=(8, 16))
    write_image(root / "big.png", size=(32, 100))
    manifest = build_mlr("folder", root, tmp_path / "out", lr_height_threshold=64, progress=False)
    resolution = {e["source"]: (e["resolution"], e["r"], e["height"]) for e in manifest["entries"]}
    assert resolution == {"small.png": ("LR", 1, 16), "big.png": ("HR", 1, 100)}
    assert manifest["lr_height_threshold"] == 64 and manifest["lr_cameras"] == []
    assert manifest["counts"]["train"] == {"images": 2, "ids": 0}
    splits = read_dataset("mlr", tmp_path / "out")
    assert len(splits.train) == 2 and splits.query == [] and splits.gallery == []


def test_truncated_image_leaves_nothing(tmp_path):
    root = write_viper(tmp_path / "VIPeR", people=6)
    broken = root / "cam_b" / "003_225.bmp"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DrfmError, match="003_225.bmp"):
        build_mlr("viper", root, tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VIPeR"]


def test_output_folder_checks(tmp_path):
    root = write_viper(tmp_path / "VIPeR", people=4)
    with pytest.raises(DrfmError, match="inside the source dataset folder"):
        build_mlr("viper", root, root / "mlr", progress=False)
    with pytest.raises(DrfmError, match="contains the source dataset folder"):
        build_mlr("viper", root, tmp_path, progress=False)
    other = tmp_path / "mine"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(DrfmError, match="holds no MLR build"):
        build_mlr("viper", root, other, progress=False)
    assert (other / "keep.txt").read_text() == "precious"
    build_mlr("viper", root, tmp_path / "out", seed=0, progress=False)
    rebuilt = build_mlr("viper", root, tmp_path / "out", seed=1, progress=False)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["seed"] == 1 == rebuilt["seed"]
    (tmp_path / "empty").mkdir()
    build_mlr("viper", root, tmp_path / "empty", progress=False)
    assert (tmp_path / "empty" / "manifest.json").is_file()


def prepare(root: Path, out: Path, *options: str, dataset: str = "viper") -> list[str]:
    """`drfm prepare mlr` argv for `root` -> `out`."""
    return ["prepare", "mlr", "--dataset", dataset, "--root", str(root), "--out", str(out), *options]


@pytest.mark.parametrize(
    "foreign", ["notes.txt", "images/train/cam_a/extra.png", "images/mine/", "images/query/cam_b/0000_c1_x.png"]
)
def test_rebuild_refuses_to_delete_user_files(tmp_path, capsys, foreign):
    root = write_viper(tmp_path / "VIPeR", people=4)
    out = tmp_path / "out"
    assert main(prepare(root, out, "--seed", "0")) == 0
    before = tree_bytes(out)
    path = out / foreign
    if foreign.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"user data")
    capsys.readouterr()
    assert main(prepare(root, out, "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: holds 1 file(s) or folder(s) its MLR build did not write" in err
    assert f"(first: {foreign})" in err and "refusing to replace it" in err
    after = tree_bytes(out)
    assert after.pop(foreign.rstrip("/"), b"user data") == b"user data" and after == before
    path.unlink() if path.is_file() else path.rmdir()
    assert main(prepare(root, out, "--seed", "1")) == 0
    assert "Replaced the earlier MLR build in" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1


def test_output_link_and_file_are_refused(tmp_path, capsys):
    root = write_viper(tmp_path / "VIPeR", people=4)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert main(prepare(root, tmp_path / "link")) == 2
    assert "output folder is a symbolic link" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(prepare(root, tmp_path / "file")) == 2
    assert "file: exists and is not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x" and list((tmp_path / "real").iterdir()) == []


def test_stale_temporary_folders_are_removed_and_reported(tmp_path, capsys):
    root = write_viper(tmp_path / "VIPeR", people=4)
    stale = [tmp_path / ".out.abcd_123.tmp", tmp_path / ".out.zzzzzzzz.tmp"]
    for folder in stale:
        write_image(folder / "out" / "images" / "half.png")
    kept = [tmp_path / ".out.ABCD1234.tmp", tmp_path / ".out.abc.tmp", tmp_path / ".other.abcd1234.tmp",
            tmp_path / ".out.x.abcd1234.tmp"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / ".out.file1234.tmp").write_text("a file, not our folder")
    assert main(prepare(root, tmp_path / "out")) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [
        f"Removed {folder}, a temporary folder left by an interrupted build of {tmp_path / 'out'}." for folder in stale
    ]
    assert not any(folder.exists() for folder in stale) and all(folder.is_dir() for folder in kept)
    assert (tmp_path / ".out.file1234.tmp").is_file()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert leftovers == [".out.ABCD1234.tmp", ".out.abc.tmp", ".out.file1234.tmp", ".out.x.abcd1234.tmp"]


# Data without camera ids (3DPeS, i-LIDS) or with one camera (TownCentre): per-person half.


def check_per_person_half(out: Path, manifest: dict, reader_name: str, root: Path, seed: int) -> None:
    """floor(n/2) LR images per person, down-sampled by r in {2,3,4}; the rest HR and as they were;
    the query is the reader's own query set; files agree with the manifest."""
    assert manifest["lr_rule"] == "per-person-half" and manifest["lr_cameras"] == []
    assert manifest["scale_factors"] == [2, 3, 4] and manifest["lr_height_threshold"] is None
    assert manifest["seed"] == seed and manifest["interpolation"] == "bicubic-antialias"
    entries = manifest["entries"]
    people = {(e["split"] == "train", e["pid"]) for e in entries}
    for person in people:
        mine = [e for e in entries if (e["split"] == "train", e["pid"]) == person]
        assert sum(e["resolution"] == "LR" for e in mine) == len(mine) // 2
    for entry in entries:
        lr = entry["resolution"] == "LR"
        assert (entry["r"] in (2, 3, 4)) == lr and (entry["r"] == 1) == (not lr)
        if entry["split"] != "train":
            assert (entry["split"] == "query") == lr
        assert (entry["width"], entry["height"]) == (round(WIDTH / entry["r"]), round(HEIGHT / entry["r"]))
        with Image.open(out / entry["path"]) as image:
            assert image.size == (entry["width"], entry["height"])
    reader = read_dataset(reader_name, root, seed=seed)
    query_sources = {e["source"] for e in entries if e["split"] == "query"}
    assert query_sources == {r.path.name for r in reader.query}
    gallery_ids = {e["pid"] for e in entries if e["split"] == "gallery"}
    assert {e["pid"] for e in entries if e["split"] == "query"} <= gallery_ids


@pytest.mark.parametrize(
    "name, writer", [("threedpes", write_threedpes), ("ilids", write_ilids), ("towncentre", write_towncentre)]
)
def test_camera_less_build_is_per_person_half(tmp_path, name, writer):
    root = writer(tmp_path / "src")
    first = build_mlr(name, root, tmp_path / "a", seed=4, progress=False)
    check_per_person_half(tmp_path / "a", first, name, root, seed=4)
    # people with 4, 2, 1, 5, 3, 2 images: 2 + 1 + 0 + 2 + 1 + 1 = 7 LR images
    assert sum(e["resolution"] == "LR" for e in first["entries"]) == 7
    assert sum(c["images"] for c in first["counts"].values()) == PETA_IMAGES
    assert first["counts"]["train"]["ids"] == 3 and first["counts"]["gallery"]["ids"] == 3
    second = build_mlr(name, root, tmp_path / "b", seed=4, progress=False)
    assert first == second and tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    other = build_mlr(name, root, tmp_path / "c", seed=5, progress=False)
    assert [e["source"] for e in other["entries"] if e["resolution"] == "LR"] != [
        e["source"] for e in first["entries"] if e["resolution"] == "LR"
    ]
    splits = read_dataset("mlr", tmp_path / "a")
    assert splits.low_resolution_mask(splits.query).all() and not splits.low_resolution_mask(splits.gallery).any()
    lr_train = splits.low_resolution_mask(splits.train)
    assert lr_train.sum() == sum(e["resolution"] == "LR" for e in first["entries"] if e["split"] == "train") > 0


def test_per_person_half_command_summary_and_options(tmp_path, capsys):
    root = write_threedpes(tmp_path / "3DPeS")
    out = tmp_path / "out"
    assert main(prepare(root, out, "--seed", "2", dataset="threedpes")) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    single = sum(PETA_PEOPLE[pid] == 1 for pid in PETA_PEOPLE)
    assert "MLR threedpes (seed 2, rule per-person-half)" in printed
    assert f"floor(n/2) of n; one-image people, HR only: {single})" in printed and "(7 LR images)" in printed
    assert manifest["lr_rule"] == "per-person-half" and manifest["seed"] == 2
    assert main(prepare(root, tmp_path / "h", "--lr-height-threshold", "17", dataset="threedpes")) == 0
    height = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert height["lr_rule"] == "height" and height["lr_height_threshold"] == 17
    # every fixture image is 16 pixels high, so all are LR and nothing is down-sampled
    assert all(e["resolution"] == "LR" and e["r"] == 1 for e in height["entries"])
    assert "rule height" in capsys.readouterr().out
    for options, message in (
        (["--lr-camera", "0"], "--lr-camera 0: 'threedpes' has images of unknown camera; omit it"),
        (["--seed", "-3"], "argument --seed: must be at least 0, got -3"),
    ):
        assert main(prepare(root, tmp_path / "bad", *options, dataset="threedpes")) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    town = write_towncentre(tmp_path / "TownCentre")
    assert main(prepare(town, tmp_path / "bad", "--lr-camera", "0", dataset="towncentre")) == 2
    assert "--lr-camera 0: 'towncentre' has a single camera; omit it" in capsys.readouterr().err
    viper = write_viper(tmp_path / "VIPeR", people=4)
    assert main(prepare(viper, tmp_path / "bad", "--lr-height-threshold", "50")) == 2
    assert "--lr-height-threshold 50: 'viper' has cameras [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_prepare_mlr_command(tmp_path, capsys):
    root = write_viper(tmp_path / "VIPeR", people=4)
    parser = argparse.ArgumentParser()
    prepare_mlr.add_arguments(parser)
    args = parser.parse_args(["--dataset", "viper", "--root", str(root), "--out", str(tmp_path / "out"), "--seed", "2"])
    assert prepare_mlr.run(args) == 0
    printed = capsys.readouterr().out
    assert "train 4 images / 2 ids" in printed and "LR camera(s) 1" in printed and "r=1: 4" in printed
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["seed"] == 2


def test_real_viper_build_is_reproducible(tmp_path):
    root = SHARED_DATASETS / "VIPeR"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    first = build_mlr("viper", root, tmp_path / "a", seed=0, progress=False)
    build_mlr("viper", root, tmp_path / "b", seed=0, progress=False)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert {split: c["ids"] for split, c in first["counts"].items()} == {"train": 316, "query": 316, "gallery": 316}
    assert first["counts"]["train"]["images"] == 632
    check_downsampled_sizes(tmp_path / "a", first, 48, 128, lr_camera=1)
    assert {e["r"] for e in first["entries"] if e["camid"] == 1} == {2, 3, 4}


@pytest.mark.parametrize(
    "folder, name, counts, lr_images",
    [
        # LR images = sum over people of floor(n / 2): 481 of 1,012 (3DPeS), 212 of 477 (i-LIDS).
        ("3DPeS", "threedpes", {"train": (543, 96), "query": (226, 97), "gallery": (243, 97)}, 481),
        ("i-LIDS", "ilids", {"train": (253, 60), "query": (97, 59), "gallery": (127, 60)}, 212),
    ],
)
def test_real_camera_less_builds(tmp_path, folder, name, counts, lr_images):
    root = SHARED_DATASETS / folder
    if not root.is_dir():
        pytest.skip(f"{root} not present: the real datasets beside the repository are not on this machine")
    manifest = build_mlr(name, root, tmp_path / "out", seed=0, progress=False)
    assert manifest["lr_rule"] == "per-person-half"
    assert {split: (c["images"], c["ids"]) for split, c in manifest["counts"].items()} == counts
    lr = [e for e in manifest["entries"] if e["resolution"] == "LR"]
    assert len(lr) == lr_images and {e["r"] for e in lr} == {2, 3, 4}
    assert {e["source"] for e in manifest["entries"] if e["split"] == "query"} == {
        r.path.name for r in read_dataset(name, root, seed=0).query
    }
