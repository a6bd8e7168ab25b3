"""Oxford TownCentre (Benfold & Reid, CVPR 2011), the person crops as redistributed in PETA.

Layout (root is the `TownCentre` folder, flat): `PID_FRAME.jpg` (track/person PID, video frame
FRAME; e.g. `100_1726.jpg`). `Label.txt` (PETA's attribute labels; it lists 6 ids that have no
image) and every other non-image file are ignored; an image file whose name does not parse is an
error naming it. The copy holds 6,967 images of 222 people (ids 0-230 with gaps), 1-157 frames
each, mostly every 9th frame of one track. One video camera: every camid is 0, so any two images
of a person are consecutive views from the same camera (easy matches).

Protocol (`records.person_half_splits`): a seeded half split of the people (111 / 111 with 222),
train = all images of the training people; per test person a seeded floor(n / 2) of its frames
are queries and the rest its gallery (a one-image person is gallery only). `lr_cameras=()`: no
image is LR here; `drfm prepare mlr` down-samples a seeded half of each person's images (with one
camera there is no camera to down-sample).
"""

from __future__ import annotations

import re
from pathlib import Path

from drfm.data.image_io import is_image_file
from drfm.data.records import DatasetSplits, ImageRecord, person_half_splits
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

NAME = re.compile(r"^(\d+)_(\d+)\.jpg$")
CAMID = 0


@register_dataset("towncentre")
def read_towncentre(root: Path, seed: int = 0) -> DatasetSplits:
    """Read TownCentre (PETA crops, one camera) with a seeded half split of its people."""
    records = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or not is_image_file(path):
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a TownCentre image name (expected PID_FRAME.jpg)")
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=CAMID))
    if not records:
        raise DrfmError(f"{root}: no TownCentre images (expected PID_FRAME.jpg files)")
    return person_half_splits("towncentre", root, records, seed)
