"""Market-1501 (Zheng et al., ICCV 2015) in its original release layout.

Layout (root is the release folder, or a folder holding `Market-1501-v15.09.15/`):

    bounding_box_train/PPPP_cCsS_FFFFFF_NN.jpg   12,936 images, 751 ids
    query/PPPP_cCsS_FFFFFF_NN.jpg                 3,368 images, 750 ids
    bounding_box_test/PPPP_cCsS_FFFFFF_NN.jpg    19,732 images, 750 ids + distractors + junk

PPPP is the person (-1 = junk: skipped everywhere; 0000 = distractor: kept in the gallery only, as
the standard protocol does), C the camera 1-6 (camid C-1), S the sequence, FFFFFF the frame and NN
the detection box. Files that are not `.jpg` (the release ships a `Thumbs.db`) are ignored; a `.jpg`
whose name does not parse is a layout error. No camera is low-resolution: `lr_cameras=()`.
"""

from __future__ import annotations

import re
from pathlib import Path

from drfm.data.records import DatasetSplits, ImageRecord
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

RELEASE_FOLDER = "Market-1501-v15.09.15"
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
NAME = re.compile(r"^(-1|\d{4})_c([1-6])s(\d+)_(\d{6})_(\d{2})\.jpg$")
JUNK_PID = -1
DISTRACTOR_PID = 0


def _read_folder(folder: Path, keep_distractors: bool) -> list[ImageRecord]:
    """Records of every `.jpg` in `folder`, sorted by name; DrfmError names a file that does not parse."""
    if not folder.is_dir():
        raise DrfmError(f"{folder}: Market-1501 folder is missing")
    records = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".jpg":
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a Market-1501 image name (expected PPPP_cCsS_FFFFFF_NN.jpg)")
        pid, camera = int(match.group(1)), int(match.group(2))
        if pid == JUNK_PID or (pid == DISTRACTOR_PID and not keep_distractors):
            continue
        records.append(ImageRecord(path=path, pid=pid, camid=camera - 1))
    return records


@register_dataset("market1501")
def read_market1501(root: Path, seed: int = 0) -> DatasetSplits:
    """Read Market-1501's fixed train / query / gallery split (`seed` is unused: the split is fixed)."""
    base = root / RELEASE_FOLDER if (root / RELEASE_FOLDER).is_dir() else root
    splits = DatasetSplits(
        name="market1501",
        root=root,
        train=_read_folder(base / SPLIT_FOLDERS["train"], keep_distractors=False),
        query=_read_folder(base / SPLIT_FOLDERS["query"], keep_distractors=False),
        gallery=_read_folder(base / SPLIT_FOLDERS["gallery"], keep_distractors=True),
        lr_cameras=(),
    )
    splits.check_not_empty()
    return splits
