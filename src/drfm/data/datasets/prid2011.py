"""PRID 2011 (Hirzer et al., SCIA 2011), single-shot part, in its original release layout.

Layout (root is `prid_2011` or `prid_2011/single_shot`): `single_shot/cam_a/person_PPPP.png` (385
images, 64x128) and `single_shot/cam_b/person_PPPP.png` (749 images). As the release's readme
says, persons 0001-0200 are the same people in both cameras; every other number is a person seen
by one camera only (so cam_a's 0201 and cam_b's 0201, if both exist, are different people).
cam_a is camid 0, cam_b camid 1; pids are the file numbers.

Protocol (the field's single-shot one): 100 of the 200 two-camera people, drawn at random seeded by
`seed`, train (both cameras' images); query = the cam_a images of the other 100; gallery = the
cam_b images of those 100 plus every cam_b-only person (549 in the release) as distractors. The
cam_a-only people are not used. `meta["camera_images"]` counts the images read per camera folder
({"cam_a": 385, "cam_b": 749} for the release). No camera is low-resolution: `lr_cameras=()`.
"""

from __future__ import annotations

import re
from pathlib import Path


from drfm.data.records import DatasetSplits, ImageRecord, seeded_half_split
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

SINGLE_SHOT = "single_shot"
CAMERAS = ("cam_a", "cam_b")
NAME = re.compile(r"^person_(\d{4})\.png$")
SHARED_PERSONS = 200


def _read_camera(folder: Path, camid: int) -> list[ImageRecord]:
    """Records of every `.png` in `folder`, sorted by name; DrfmError names a file that does not parse."""
    if not folder.is_dir():
        raise DrfmError(f"{folder}: PRID 2011 camera folder is missing")
    records = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".png":
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a PRID 2011 image name (expected person_PPPP.png)")
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=camid))
    return records


@register_dataset("prid2011")
def read_prid2011(root: Path, seed: int = 0) -> DatasetSplits:
    """Read PRID 2011 single-shot: seeded half of the two-camera people train, the rest test."""
    base = root if (root / CAMERAS[0]).is_dir() else root / SINGLE_SHOT
    cam_a, cam_b = (_read_camera(base / name, camid) for camid, name in enumerate(CAMERAS))
    shared = sorted(
        {r.pid for r in cam_a if r.pid <= SHARED_PERSONS} & {r.pid for r in cam_b if r.pid <= SHARED_PERSONS}
    )
    train_pids, test_pids = seeded_half_split(shared, seed)
    splits = DatasetSplits(
        name="prid2011",
        root=root,
        train=[r for r in cam_a + cam_b if r.pid in train_pids],
        query=[r for r in cam_a if r.pid in test_pids],
        gallery=[r for r in cam_b if r.pid in test_pids or r.pid > SHARED_PERSONS],
        lr_cameras=(),
        meta={"camera_images": {name: len(cam) for name, cam in zip(CAMERAS, (cam_a, cam_b))}},
    )
    splits.check_not_empty()
    return splits
