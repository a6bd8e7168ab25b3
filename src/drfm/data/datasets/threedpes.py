"""3DPeS (Baltieri et al., J-HGBU 2011), the person crops as redistributed in the PETA collection.

Layout (root is the `3DPeS` folder, flat): `PID_SEQ_FRAME_N_RGB.bmp` (person PID, sequence SEQ,
frame N; e.g. `100_4_FRAME_185_RGB.bmp`) and a few `PID_B_SEQ_FRAME_N_RGB.bmp`. `Label.txt`
(PETA's attribute labels) and every other non-image file are ignored; an image file whose name
does not parse is an error naming it. 1,012 images, ~60 pixels wide, 88-362 high, 1-26 per person.
The release's 8 cameras are not given per image: every camid is -1 (UNKNOWN_CAMID).

`_B_` files: the same person as the plain PID. Each of the 6 `_B_` files (persons 20, 28, 57, 72,
166, 198) shares its sequence number with plain files of its PID (except 72: sequence 459, the
person's others are 455 and 458), shows the same person when looked at, and PETA's `Label.txt` has
one line per plain PID and none for a `_B_` person. Counted so there are 193 people (= the 193
lines of `Label.txt`; one, person 139, with a single image); counting `_B_` as separate people
would give 199. (The collection's README says 192 people.)

Protocol (`records.person_half_splits`): a seeded half split of the people (train gets the
smaller half: 96 train / 97 test people with 193), train = all images of the training people;
per test person a seeded floor(n / 2) of its images are queries and the rest its gallery.
`lr_cameras=()`: no image is LR here; `drfm prepare mlr` down-samples a seeded half of each
person's images.
"""

from __future__ import annotations

import re
from pathlib import Path

from drfm.data.image_io import is_image_file
from drfm.data.records import UNKNOWN_CAMID, DatasetSplits, ImageRecord, person_half_splits
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

NAME = re.compile(r"^(\d+)(?:_B)?_(\d+)_FRAME_(\d+)_RGB\.bmp$")


@register_dataset("threedpes")
def read_threedpes(root: Path, seed: int = 0) -> DatasetSplits:
    """Read 3DPeS (PETA crops) with a seeded half split of its people (`_B_` files join their PID)."""
    records = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or not is_image_file(path):
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not a 3DPeS image name (expected PID[_B]_SEQ_FRAME_N_RGB.bmp)")
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=UNKNOWN_CAMID))
    if not records:
        raise DrfmError(f"{root}: no 3DPeS images (expected PID_SEQ_FRAME_N_RGB.bmp files)")
    return person_half_splits("threedpes", root, records, seed)
