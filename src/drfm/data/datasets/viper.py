"""VIPeR (Gray & Tao, ECCV 2008) in its original release layout.

Layout (root is the `VIPeR` folder): `cam_a/PPP_ANGLE.bmp` and `cam_b/PPP_ANGLE.bmp`, 632 people,
one 48x128 image per person per camera; the same PPP in both folders is the same person. cam_a is
camid 0, cam_b camid 1.

Protocol (the field's usual one): the 632 people are split at random, seeded by `seed`, into 316
for training (both cameras' images) and 316 for testing; query = the cam_b images of the test
people, gallery = their cam_a images. No camera is low-resolution: `lr_cameras=()` (the data
becomes cross-resolution only when MLR-VIPeR down-samples one camera).
"""

from __future__ import annotations

import re
from pathlib import Path


from drfm.data.records import DatasetSplits, ImageRecord, seeded_half_split
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

CAMERAS = ("cam_a", "cam_b")
NAME = re.compile(r"^(\d{3})_(\d+)\.bmp$")


def _read_camera(folder: Path, camid: int) -> list[ImageRecord]:
    """Records of every `.bmp` in `folder`, sorted by name; DrfmError names a file that does not parse."""
    if not folder.is_dir():
        raise DrfmError(f"{folder}: VIPeR camera folder is missing")
    records = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".bmp":
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a VIPeR image name (expected PPP_ANGLE.bmp)")
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=camid))
    return records


@register_dataset("viper")
def read_viper(root: Path, seed: int = 0) -> DatasetSplits:
    """Read VIPeR with a seeded 316/316 (half/half) split of people into train and test."""
    cam_a, cam_b = (_read_camera(root / name, camid) for camid, name in enumerate(CAMERAS))
    pids_a, pids_b = {r.pid for r in cam_a}, {r.pid for r in cam_b}
    for records, other in ((cam_a, pids_b), (cam_b, pids_a)):
        for record in records:
            if record.pid not in other:
                raise DrfmError(f"{record.path}: person {record.pid:03d} has no image in the other camera")
    train_pids, _ = seeded_half_split(pids_a, seed)
    splits = DatasetSplits(
        name="viper",
        root=root,
        train=[r for r in cam_a + cam_b if r.pid in train_pids],
        query=[r for r in cam_b if r.pid not in train_pids],
        gallery=[r for r in cam_a if r.pid not in train_pids],
        lr_cameras=(),
    )
    splits.check_not_empty()
    return splits
