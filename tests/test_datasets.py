"""Dataset readers on tiny fixtures in their real release layouts, and on the real data when present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drfm.cli import main
from drfm.data.records import UNKNOWN_CAMID, DatasetSplits, ImageRecord, seeded_half_split, seeded_person_half
from drfm.data.registry import dataset_names, read_dataset
from drfm.errors import DrfmError
from fixtures_layouts import (
    PETA_IMAGES,
    PETA_PEOPLE,
    write_caviar,
    write_cuhk03_openreid,
    write_cuhk03_torchreid,
    write_ilids,
    write_image,
    write_market,
    write_prid,
    write_threedpes,
    write_towncentre,
    write_viper,
)

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def ids(records) -> set[int]:
    return {r.pid for r in records}


def cams(records) -> set[int]:
    return {r.camid for r in records}


def names(records) -> set[str]:
    return {r.path.name for r in records}


def test_every_reader_is_registered():
    assert {
        "market1501", "cuhk03", "caviar", "viper", "prid2011", "folder", "mlr", "threedpes", "ilids", "towncentre"
    } <= set(dataset_names())


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DrfmError, match="unknown dataset 'nope'"):
        read_dataset("nope", tmp_path)


# Market-1501


def test_market1501_splits_junk_and_distractors(tmp_path):
    splits = read_dataset("market1501", write_market(tmp_path))
    assert ids(splits.train) == {2, 7} and len(splits.train) == 4
    assert ids(splits.query) == {1, 3} and len(splits.query) == 4
    assert ids(splits.gallery) == {0, 1, 3} and len(splits.gallery) == 5
    assert cams(splits.train) == {0, 1}
    assert "0000_c2s1_000060_03.jpg" in names(splits.gallery)
    assert not any(r.pid == -1 for r in splits.train + splits.query + splits.gallery)
    assert next(r for r in splits.gallery if r.pid == 0).camid == 1
    assert splits.lr_cameras == ()


def test_market1501_release_folder_as_root(tmp_path):
    write_market(tmp_path / "Market-1501-v15.09.15")
    assert len(read_dataset("market1501", tmp_path).train) == 4


def test_market1501_bad_name_is_named(tmp_path):
    write_market(tmp_path)
    write_image(tmp_path / "bounding_box_train" / "0002_cam1_0001.jpg")
    with pytest.raises(DrfmError, match="0002_cam1_0001.jpg"):
        read_dataset("market1501", tmp_path)


def test_market1501_missing_folder_is_named(tmp_path):
    write_market(tmp_path)
    for path in (tmp_path / "query").iterdir():
        path.unlink()
    (tmp_path / "query").rmdir()
    with pytest.raises(DrfmError, match="query: Market-1501 folder is missing"):
        read_dataset("market1501", tmp_path)


def test_market1501_empty_split(tmp_path):
    write_market(tmp_path, train_pids=())
    (tmp_path / "bounding_box_train").mkdir()
    with pytest.raises(DrfmError, match="empty train split"):
        read_dataset("market1501", tmp_path)


# CUHK03


def test_cuhk03_openreid_layout(tmp_path):
    write_cuhk03_openreid(tmp_path)
    splits = read_dataset("cuhk03", tmp_path)
    assert ids(splits.train) == {0, 2, 3, 5} and len(splits.train) == 16
    assert ids(splits.query) == {1, 4} and cams(splits.query) == {1} and len(splits.query) == 4
    assert ids(splits.gallery) == {1, 4} and cams(splits.gallery) == {0} and len(splits.gallery) == 4
    second = read_dataset("cuhk03", tmp_path, split_index=1)
    assert ids(second.query) == {0, 5}


def test_cuhk03_openreid_rejects_single_variant_and_bad_split(tmp_path):
    write_cuhk03_openreid(tmp_path)
    with pytest.raises(DrfmError, match="images_labeled"):
        read_dataset("cuhk03", tmp_path, variant="labeled")
    with pytest.raises(DrfmError, match="split_index 2 out of range"):
        read_dataset("cuhk03", tmp_path, split_index=2)
    with pytest.raises(DrfmError, match="variant 'both_'"):
        read_dataset("cuhk03", tmp_path, variant="both_")


def test_cuhk03_openreid_bad_name_is_named(tmp_path):
    write_cuhk03_openreid(tmp_path)
    write_image(tmp_path / "images" / "1_001_1_01.jpg")
    with pytest.raises(DrfmError, match="1_001_1_01.jpg"):
        read_dataset("cuhk03", tmp_path)


def test_cuhk03_torchreid_layout_variants(tmp_path):
    write_cuhk03_torchreid(tmp_path)
    # (pair, person) sorted: (1,1) (1,2) (1,3) (2,1) (2,2) -> pids 0..4; test = (1,2), (2,1) = pids 1, 3.
    labeled = read_dataset("cuhk03", tmp_path, variant="labeled")
    assert ids(labeled.train) == {0, 2, 4} and len(labeled.train) == 6
    assert ids(labeled.query) == {1, 3} and cams(labeled.query) == {1}
    assert {r.path.parent.name for r in labeled.train} == {"images_labeled"}
    both = read_dataset("cuhk03", tmp_path)
    assert len(both.train) == 12 and len(both.query) == 4 and len(both.gallery) == 4
    assert names(both.gallery) == {"1_002_1_01.png", "2_001_1_01.png"}


def test_cuhk03_torchreid_split_files_disagree(tmp_path):
    write_cuhk03_torchreid(tmp_path)
    path = tmp_path / "splits_classic_detected.json"
    splits = json.loads(path.read_text())
    splits[0]["query"] = splits[0]["query"][:2]
    path.write_text(json.dumps(splits))
    with pytest.raises(DrfmError, match="different test people"):
        read_dataset("cuhk03", tmp_path)
    assert len(read_dataset("cuhk03", tmp_path, variant="labeled").query) == 2


def test_cuhk03_no_image_folder(tmp_path):
    with pytest.raises(DrfmError, match="no CUHK03 image folder"):
        read_dataset("cuhk03", tmp_path)


# CAVIAR4REID


@pytest.mark.parametrize("sub", ["", "CAVIARa"])
def test_caviar_two_camera_people_split_in_halves(tmp_path, sub):
    write_caviar(tmp_path)
    splits = read_dataset("caviar", tmp_path / sub if sub else tmp_path, seed=3)
    assert len(ids(splits.train)) == 2 and len(ids(splits.query)) == 2
    assert ids(splits.train) | ids(splits.query) == {1, 2, 3, 4}
    assert ids(splits.query) == ids(splits.gallery)
    assert len(splits.train) == 8 and len(splits.query) == 4 and len(splits.gallery) == 4
    assert cams(splits.query) == {1} and cams(splits.gallery) == {0}
    assert all(int(r.path.stem[4:]) >= 11 for r in splits.query)
    assert splits.lr_cameras == (1,)


def test_caviar_index_out_of_range_is_named(tmp_path):
    write_caviar(tmp_path)
    write_image(tmp_path / "CAVIARa" / "0001021.jpg")
    with pytest.raises(DrfmError, match="0001021.jpg"):
        read_dataset("caviar", tmp_path)


def test_caviar_without_two_camera_people_is_empty(tmp_path):
    write_caviar(tmp_path, two_camera=())
    with pytest.raises(DrfmError, match="empty train split"):
        read_dataset("caviar", tmp_path)


# VIPeR


def test_viper_half_split_query_cam_b(tmp_path):
    write_viper(tmp_path, people=6)
    splits = read_dataset("viper", tmp_path, seed=0)
    assert len(ids(splits.train)) == 3 and len(splits.train) == 6
    assert ids(splits.query) == ids(splits.gallery) == set(range(6)) - ids(splits.train)
    assert {r.path.parent.name for r in splits.query} == {"cam_b"} and cams(splits.query) == {1}
    assert {r.path.parent.name for r in splits.gallery} == {"cam_a"} and cams(splits.gallery) == {0}
    again = read_dataset("viper", tmp_path, seed=0)
    assert again.train == splits.train
    train_sets = {frozenset(ids(read_dataset("viper", tmp_path, seed=s).train)) for s in range(6)}
    assert len(train_sets) > 1


def test_viper_person_without_partner_is_named(tmp_path):
    write_viper(tmp_path, people=4)
    write_image(tmp_path / "cam_a" / "009_0.bmp")
    with pytest.raises(DrfmError, match="009_0.bmp: person 009 has no image in the other camera"):
        read_dataset("viper", tmp_path)


def test_viper_bad_name_and_missing_camera(tmp_path):
    write_viper(tmp_path, people=4)
    write_image(tmp_path / "cam_b" / "person1.bmp")
    with pytest.raises(DrfmError, match="person1.bmp"):
        read_dataset("viper", tmp_path)
    with pytest.raises(DrfmError, match="cam_a: VIPeR camera folder is missing"):
        read_dataset("viper", tmp_path / "cam_b")


def test_viper_single_person_gives_empty_train(tmp_path):
    write_viper(tmp_path, people=1)
    with pytest.raises(DrfmError, match="empty train split"):
        read_dataset("viper", tmp_path)


# PRID 2011


@pytest.mark.parametrize("sub", ["", "single_shot"])
def test_prid2011_single_shot_protocol(tmp_path, sub):
    write_prid(tmp_path)
    splits = read_dataset("prid2011", tmp_path / sub if sub else tmp_path, seed=1)
    test_ids = {1, 2, 3, 4} - ids(splits.train)
    assert len(ids(splits.train)) == 2 and len(splits.train) == 4
    assert ids(splits.query) == test_ids and cams(splits.query) == {0} and len(splits.query) == 2
    assert ids(splits.gallery) == test_ids | {386, 1201, 1202} and cams(splits.gallery) == {1}
    assert not ({201, 202} & ids(splits.train + splits.query + splits.gallery))
    assert splits.meta["camera_images"] == {"cam_a": 6, "cam_b": 7}


def test_prid2011_bad_name_is_named(tmp_path):
    write_prid(tmp_path)
    write_image(tmp_path / "single_shot" / "cam_b" / "person_12.png")
    with pytest.raises(DrfmError, match="person_12.png"):
        read_dataset("prid2011", tmp_path)


# 3DPeS, i-LIDS, TownCentre (PETA crops): no LR camera, seeded half of the people, per-person query half

PETA = {
    # name: (writer, camid of every image, a file name in the folder that must not parse)
    "threedpes": (write_threedpes, UNKNOWN_CAMID, "12_FRAME_3_RGB.bmp"),
    "ilids": (write_ilids, UNKNOWN_CAMID, "0001_01.jpg"),
    "towncentre": (write_towncentre, 0, "7-100.jpg"),
}


@pytest.mark.parametrize("name", sorted(PETA))
def test_peta_person_half_protocol(tmp_path, name):
    writer, camid, _ = PETA[name]
    splits = read_dataset(name, writer(tmp_path), seed=0)
    everything = splits.train + splits.query + splits.gallery
    assert len(everything) == PETA_IMAGES == len({r.path for r in everything})
    assert ids(everything) == set(PETA_PEOPLE) and cams(everything) == {camid}
    assert splits.lr_cameras == () and splits.low_resolution_mask(everything).sum() == 0
    assert not any(r.path.name in ("Label.txt", "Thumbs.db") for r in everything)
    train_ids, test_ids = seeded_half_split(PETA_PEOPLE, 0)
    assert ids(splits.train) == train_ids and len(train_ids) == 3
    assert len(splits.train) == sum(PETA_PEOPLE[p] for p in train_ids)
    assert ids(splits.query + splits.gallery) == test_ids
    for pid in test_ids:  # floor(n/2) queries, ceil(n/2) >= 1 gallery images per test person
        n = PETA_PEOPLE[pid]
        assert sum(r.pid == pid for r in splits.query) == n // 2
        assert sum(r.pid == pid for r in splits.gallery) == n - n // 2
    assert ids(splits.query) <= ids(splits.gallery)
    assert read_dataset(name, tmp_path, seed=0) == splits


@pytest.mark.parametrize("name", sorted(PETA))
def test_peta_seed_changes_split_and_bad_names(tmp_path, name):
    writer, _, bad = PETA[name]
    root = writer(tmp_path / "data")
    trains = {frozenset(ids(read_dataset(name, root, seed=s).train)) for s in range(8)}
    assert len(trains) > 1
    with pytest.raises(DrfmError, match="seed -1: must be a non-negative integer"):
        read_dataset(name, root, seed=-1)
    write_image(root / bad)
    with pytest.raises(DrfmError) as error:
        read_dataset(name, root)
    assert str(error.value).startswith(str(root / bad)) and "\n" not in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "Label.txt").write_text("1 upperBodyBlue\n")
    with pytest.raises(DrfmError, match=f"{empty}: no .* images"):
        read_dataset(name, empty)


def test_threedpes_b_files_are_the_same_person(tmp_path):
    splits = read_dataset("threedpes", write_threedpes(tmp_path))
    everything = splits.train + splits.query + splits.gallery
    b_files = {r.path.name: r.pid for r in everything if "_B_" in r.path.name}
    assert b_files == {"2_B_11_FRAME_100_RGB.bmp": 2, "5_B_13_FRAME_100_RGB.bmp": 5}
    assert sum(r.pid == 2 for r in everything) == PETA_PEOPLE[2] and len(ids(everything)) == len(PETA_PEOPLE)


def test_seeded_person_half_depends_on_seed_pid_and_files_only(tmp_path):
    records = [ImageRecord(tmp_path / f"{pid}_{k}.jpg", pid, -1) for pid in (0, 4, 9) for k in range(pid + 1)]
    picked = seeded_person_half(records, seed=3)
    assert seeded_person_half(records[::-1], seed=3) == picked
    assert seeded_person_half([r for r in records if r.pid == 9], seed=3) == {p for p in picked if p.name[0] == "9"}
    assert [sum(p.name.startswith(f"{pid}_") for p in picked) for pid in (0, 4, 9)] == [0, 2, 5]
    assert any(seeded_person_half(records, seed=s) != picked for s in range(4, 10))
    with pytest.raises(DrfmError, match="x.jpg: person id unknown"):
        seeded_person_half([ImageRecord(tmp_path / "x.jpg", -1, -1)], seed=0)


# folder


def test_folder_camera_tokens_and_lr_paths(tmp_path):
    small = write_image(tmp_path / "a" / "walk_c3_1.jpg", size=(8, 16))
    write_image(tmp_path / "b" / "x-cam7-2.png", size=(32, 64))
    write_image(tmp_path / "C1_03.bmp", size=(32, 100))
    write_image(tmp_path / ".hidden" / "c1_9.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    splits = read_dataset("folder", tmp_path)
    assert [(r.path.name, r.camid, r.pid) for r in splits.train] == [
        ("C1_03.bmp", 0, -1),
        ("walk_c3_1.jpg", 1, -1),
        ("x-cam7-2.png", 2, -1),
    ]
    assert splits.query == [] and splits.gallery == []
    assert splits.meta["lr_paths"] == [small]
    high = read_dataset("folder", tmp_path, lr_height_threshold=65)
    assert [p.name for p in high.meta["lr_paths"]] == ["walk_c3_1.jpg", "x-cam7-2.png"]


def test_folder_cameras_from_subfolders_else_unknown(tmp_path):
    write_image(tmp_path / "north" / "img1.jpg")
    write_image(tmp_path / "east" / "deep" / "img2.jpg")
    splits = read_dataset("folder", tmp_path)
    assert [(r.path.name, r.camid) for r in splits.train] == [("img2.jpg", 0), ("img1.jpg", 1)]
    write_image(tmp_path / "img3.jpg")
    assert cams(read_dataset("folder", tmp_path).train) == {-1}


def test_folder_empty_and_unreadable(tmp_path):
    with pytest.raises(DrfmError, match="empty train split"):
        read_dataset("folder", tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    with pytest.raises(DrfmError, match="broken.jpg"):
        read_dataset("folder", tmp_path)


def test_datasets_command_shows_lr_images_and_threshold(tmp_path, capsys):
    write_image(tmp_path / "small.png", size=(8, 16))
    write_image(tmp_path / "big.png", size=(32, 100))
    assert main(["datasets", "--dataset", "folder", "--root", str(tmp_path)]) == 0
    assert "folder LR       images      1 of 2 (height < 64 px)" in capsys.readouterr().out
    assert main(["datasets", "--dataset", "folder", "--root", str(tmp_path), "--lr-height-threshold", "101"]) == 0
    assert "folder LR       images      2 of 2 (height < 101 px)" in capsys.readouterr().out
    assert main(["datasets", "--dataset", "folder", "--root", str(tmp_path), "--lr-height-threshold", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lr-height-threshold" in err and "must be at least 1" in err
    with pytest.raises(DrfmError, match="lr_height_threshold 0: must be a positive number of pixels"):
        read_dataset("folder", tmp_path, lr_height_threshold=0)


def test_datasets_command_bad_seed_is_one_line(tmp_path, capsys):
    write_viper(tmp_path, people=4)
    assert main(["datasets", "--dataset", "viper", "--root", str(tmp_path), "--seed", "-1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("drfm: error: datasets: argument --seed: must be at least 0, got -1")
    with pytest.raises(DrfmError, match="seed -1: must be a non-negative integer"):
        read_dataset("viper", tmp_path, seed=-1)
    assert main(["datasets", "--dataset", "viper", "--root", str(tmp_path), "--lr-height-threshold", "50"]) == 2
    assert "takes no option lr_height_threshold" in capsys.readouterr().err
    assert main(["datasets", "--dataset", "viper", "--root", str(tmp_path)]) == 0
    assert "viper LR       images      0 of 8 (no LR camera" in capsys.readouterr().out


# mlr (reading a built folder; building is tested in test_mlr.py)


def _write_manifest(out: Path, entries: list[dict]) -> None:
    manifest = {"format": "drfm-mlr/1", "dataset": "toy", "lr_cameras": [1], "seed": 0, "entries": entries}
    (out / "manifest.json").write_text(json.dumps(manifest))


def _entry(path: str, split: str, pid: int, camid: int, resolution: str) -> dict:
    return {"path": path, "split": split, "pid": pid, "camid": camid, "resolution": resolution, "r": 1}


def test_mlr_reader(tmp_path):
    entries = [
        _entry("images/train/a.png", "train", 0, 0, "HR"),
        _entry("images/query/b.png", "query", 0, 1, "LR"),
        _entry("images/gallery/c.png", "gallery", 0, 0, "HR"),
    ]
    for entry in entries:
        write_image(tmp_path / entry["path"])
    _write_manifest(tmp_path, entries)
    splits = read_dataset("mlr", tmp_path)
    assert isinstance(splits, DatasetSplits) and splits.name == "mlr-toy"
    assert [r.path for r in splits.query] == [tmp_path / "images" / "query" / "b.png"]
    assert splits.lr_cameras == (1,)
    assert splits.meta["resolution"][tmp_path / "images" / "query" / "b.png"] == "LR"
    assert "entries" not in splits.meta and splits.meta["dataset"] == "toy"


def test_mlr_reader_errors(tmp_path):
    with pytest.raises(DrfmError, match="manifest.json: MLR manifest is missing"):
        read_dataset("mlr", tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DrfmError, match="not a readable JSON manifest"):
        read_dataset("mlr", tmp_path)
    _write_manifest(tmp_path, [_entry("images/train/a.png", "train", 0, 0, "HR")])
    with pytest.raises(DrfmError, match="a.png: image listed in .* is missing"):
        read_dataset("mlr", tmp_path)
    _write_manifest(tmp_path, [_entry("../a.png", "train", 0, 0, "HR")])
    with pytest.raises(DrfmError, match="must be relative"):
        read_dataset("mlr", tmp_path)
    write_image(tmp_path / "images" / "q.png")
    _write_manifest(tmp_path, [_entry("images/q.png", "query", 0, 1, "LR")])
    with pytest.raises(DrfmError, match="empty train split"):
        read_dataset("mlr", tmp_path)


# The real data beside the repository (read-only), when present.


def _shared(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} not present: the real datasets beside the repository are not on this machine")
    return path


def test_real_viper_counts():
    splits = read_dataset("viper", _shared("VIPeR"))
    everything = splits.train + splits.query + splits.gallery
    assert len(everything) == 1264 and len(ids(everything)) == 632
    assert len(ids(splits.train)) == 316 and len(splits.train) == 632
    assert len(ids(splits.query)) == 316 and ids(splits.query) == ids(splits.gallery)
    assert not ids(splits.train) & ids(splits.query)


def test_real_prid2011_counts():
    splits = read_dataset("prid2011", _shared("prid_2011"))
    assert splits.meta["camera_images"] == {"cam_a": 385, "cam_b": 749}
    assert len(ids(splits.train)) == 100 and len(splits.train) == 200
    assert len(splits.query) == 100 and len(ids(splits.query)) == 100
    assert len(splits.gallery) == 649 and len(ids(splits.gallery)) == 649
    assert ids(splits.query) < ids(splits.gallery)


# Counts of the PETA crops (seed 0). The README's 192 (3DPeS) and 119 (i-LIDS) people are what the
# other counting gives: see the readers' docstrings.


def test_real_threedpes_counts():
    splits = read_dataset("threedpes", _shared("3DPeS"), seed=0)
    everything = splits.train + splits.query + splits.gallery
    assert len(everything) == 1012 and len(ids(everything)) == 193 and cams(everything) == {-1}
    b_files = [r for r in everything if "_B_" in r.path.name]
    assert len(b_files) == 6 and ids(b_files) <= ids(r for r in everything if "_B_" not in r.path.name)
    assert len({(r.pid, "_B_" in r.path.name) for r in everything}) == 199  # _B_ as other people
    per_person = [sum(r.pid == pid for r in everything) for pid in ids(everything)]
    assert min(per_person) == 1 and max(per_person) == 26
    assert len(ids(splits.train)) == 96 and len(splits.train) == 543
    assert len(ids(splits.gallery)) == 97 and len(splits.gallery) == 243
    assert len(ids(splits.query)) == 97 and len(splits.query) == 226
    assert not ids(splits.train) & ids(splits.gallery)


def test_real_ilids_counts():
    splits = read_dataset("ilids", _shared("i-LIDS"), seed=0)
    everything = splits.train + splits.query + splits.gallery
    assert len(everything) == 477 and len(ids(everything)) == 120 and cams(everything) == {-1}
    per_person = {pid: sum(r.pid == pid for r in everything) for pid in ids(everything)}
    assert [pid for pid, n in per_person.items() if n == 1] == [120] and max(per_person.values()) == 8
    assert len(ids(splits.train)) == 60 and len(splits.train) == 253
    assert len(ids(splits.gallery)) == 60 and len(splits.gallery) == 127
    assert len(ids(splits.query)) == 59 and len(splits.query) == 97


def test_real_towncentre_counts():
    splits = read_dataset("towncentre", _shared("TownCentre"), seed=0)
    everything = splits.train + splits.query + splits.gallery
    assert len(everything) == 6967 and len(ids(everything)) == 222 and cams(everything) == {0}
    assert len(ids(splits.train)) == 111 and len(splits.train) == 3499
    assert len(ids(splits.gallery)) == 111 and len(splits.gallery) == 1763
    assert len(ids(splits.query)) == 107 and len(splits.query) == 1705
