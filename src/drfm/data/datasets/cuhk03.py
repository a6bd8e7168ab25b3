"""CUHK03 (Li et al., CVPR 2014), classic protocol: 1,467 people, 20 fixed splits of 100 test people.

The original release is one MATLAB v7.3 file (`cuhk03_release/cuhk-03.mat`) holding the labelled
and the detected crops of 5 camera pairs and the 20 test sets. The field trains on an image-folder
conversion of it; this reader accepts the two conversions the open codebases write (root is the
folder that holds them):

1. open-reid (jpg; what the MLR-CUHK03 line of work, "labelled+detected", uses):
   `images/PPPPPPPP_CC_IIII.jpg` (PPPPPPPP: person 0-1466 numbered through the 5 camera pairs in
   order; CC: view 00 or 01; IIII: index within the person and view, labelled crops first, then
   detected ones) and `splits.json`, a list of 20 objects whose "query"/"gallery" lists hold the 100
   test person numbers (`meta.json` sits beside them and is not needed). Labelled and detected crops
   share one folder and cannot be told apart, so this layout supports `variant="both"` only.
2. torchreid (png): `images_labeled/` and `images_detected/` with `A_PPP_V_II.png` (A: camera pair
   1-5; PPP: person within the pair, 1-based; V: view 1 or 2; II: image 01-10) and
   `splits_classic_labeled.json` / `splits_classic_detected.json`, lists of 20 objects whose "query"
   entries are `[image path, pid, camid]` (the test people are read from the file names). Person
   (A, PPP) gets the pid of its rank among the sorted (A, PPP) found, which is the open-reid number
   when every person is present.

Options: `variant` "labeled" | "detected" | "both" (default both), `split_index` 0-19 (default 0;
the splits are fixed by the release, so `seed` is unused). camid = view (0 or 1). Train = every image
of the 1,367 non-test people; query = the view-1 (camid 1) images of the 100 test people, gallery =
their view-0 images. No camera is low-resolution: `lr_cameras=()`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from drfm.data.records import DatasetSplits, ImageRecord
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

VARIANTS = ("labeled", "detected", "both")
OPENREID_FOLDER, OPENREID_SPLITS = "images", "splits.json"
OPENREID_NAME = re.compile(r"^(\d{8})_(0[01])_(\d{4})\.jpg$")
TORCHREID_FOLDER, TORCHREID_SPLITS = "images_{}", "splits_classic_{}.json"
TORCHREID_NAME = re.compile(r"^([1-5])_(\d{3})_([12])_(\d{2})\.png$")
QUERY_CAMID, GALLERY_CAMID = 1, 0


def _load_split(path: Path, split_index: int) -> dict:
    """The `split_index`-th object of the JSON list in `path`; DrfmError if missing, invalid or too short."""
    if not path.is_file():
        raise DrfmError(f"{path}: CUHK03 split file is missing")
    try:
        splits = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DrfmError(f"{path}: not a readable JSON split file ({exc})") from None
    valid = isinstance(splits, list) and all(isinstance(s, dict) and isinstance(s.get("query"), list) for s in splits)
    if not valid:
        raise DrfmError(f"{path}: expected a JSON list of split objects, each with a 'query' list")
    if not 0 <= split_index < len(splits):
        raise DrfmError(f"{path}: split_index {split_index} out of range (file holds {len(splits)} splits)")
    return splits[split_index]


def _list_images(folder: Path, suffix: str, name: re.Pattern) -> list[tuple[Path, re.Match]]:
    """(path, name match) of every `suffix` file in `folder`, sorted; DrfmError names a file that does not parse."""
    if not folder.is_dir():
        raise DrfmError(f"{folder}: CUHK03 image folder is missing")
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != suffix:
            continue
        match = name.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a CUHK03 image name (expected {name.pattern})")
        found.append((path, match))
    return found


def _read_openreid(root: Path, variant: str, split_index: int) -> tuple[list[ImageRecord], set[int]]:
    """Records and test pids of the open-reid layout."""
    if variant != "both":
        raise DrfmError(
            f"{root / OPENREID_FOLDER}: the open-reid layout mixes labelled and detected crops; "
            f"variant='{variant}' needs the torchreid layout (images_{variant}/)"
        )
    split = _load_split(root / OPENREID_SPLITS, split_index)
    entries = split["query"] + split.get("gallery", [])
    if not all(isinstance(pid, int) for pid in entries):
        raise DrfmError(f"{root / OPENREID_SPLITS}: split {split_index} 'query'/'gallery' must list person ids")
    records = [
        ImageRecord(path=path, pid=int(m.group(1)), camid=int(m.group(2)))
        for path, m in _list_images(root / OPENREID_FOLDER, ".jpg", OPENREID_NAME)
    ]
    return records, set(entries)


def _torchreid_test_keys(path: Path, split_index: int) -> set[tuple[int, int]]:
    """(camera pair, person) of every query entry of split `split_index` in a torchreid split file."""
    keys = set()
    for entry in _load_split(path, split_index)["query"]:
        image = entry[0] if isinstance(entry, list) and entry and isinstance(entry[0], str) else ""
        match = TORCHREID_NAME.match(Path(image).name)
        if match is None:
            raise DrfmError(f"{path}: split {split_index} query entry {entry!r} does not name a CUHK03 image")
        keys.add((int(match.group(1)), int(match.group(2))))
    return keys


def _read_torchreid(root: Path, variant: str, split_index: int) -> tuple[list[ImageRecord], set[int]]:
    """Records and test pids of the torchreid layout."""
    variants = ("labeled", "detected") if variant == "both" else (variant,)
    found = [
        item for v in variants for item in _list_images(root / TORCHREID_FOLDER.format(v), ".png", TORCHREID_NAME)
    ]
    test_keys = [_torchreid_test_keys(root / TORCHREID_SPLITS.format(v), split_index) for v in variants]
    if any(keys != test_keys[0] for keys in test_keys):
        files = " and ".join(TORCHREID_SPLITS.format(v) for v in variants)
        raise DrfmError(f"{root}: split {split_index} lists different test people in {files}")
    keys = sorted({(int(m.group(1)), int(m.group(2))) for _, m in found})
    pid_of = {key: pid for pid, key in enumerate(keys)}
    records = [
        ImageRecord(path=path, pid=pid_of[(int(m.group(1)), int(m.group(2)))], camid=int(m.group(3)) - 1)
        for path, m in found
    ]
    return records, {pid_of[key] for key in test_keys[0] if key in pid_of}


@register_dataset("cuhk03")
def read_cuhk03(root: Path, seed: int = 0, variant: str = "both", split_index: int = 0) -> DatasetSplits:
    """Read CUHK03's classic split `split_index` (1,367 train / 100 test people) from either conversion."""
    if variant not in VARIANTS:
        raise DrfmError(f"cuhk03 variant '{variant}' is not one of {', '.join(VARIANTS)}")
    if (root / OPENREID_FOLDER).is_dir():
        records, test_pids = _read_openreid(root, variant, split_index)
    elif any((root / TORCHREID_FOLDER.format(v)).is_dir() for v in VARIANTS[:2]):
        records, test_pids = _read_torchreid(root, variant, split_index)
    else:
        raise DrfmError(f"{root}: no CUHK03 image folder ({OPENREID_FOLDER}/, images_labeled/ or images_detected/)")
    splits = DatasetSplits(
        name="cuhk03",
        root=root,
        train=[r for r in records if r.pid not in test_pids],
        query=[r for r in records if r.pid in test_pids and r.camid == QUERY_CAMID],
        gallery=[r for r in records if r.pid in test_pids and r.camid == GALLERY_CAMID],
        lr_cameras=(),
        meta={"variant": variant, "split_index": split_index},
    )
    splits.check_not_empty()
    return splits
