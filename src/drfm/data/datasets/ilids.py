"""i-LIDS MCTS (Zheng et al., BMVC 2009), the person crops as redistributed in the PETA collection.

Layout (root is the `i-LIDS` folder, flat): `PPPP_NNN.jpg` (4-digit person, 3-digit image index).
`Label.txt` (PETA's attribute labels) and every other non-image file are ignored; an image file
whose name does not parse is an error naming it. The cameras are not given: every camid is -1
(UNKNOWN_CAMID). The copy holds 477 images of 120 person numbers, 1-8 images each: person 0120 has
a single image (the collection's README counts 119 people with 2-8 images, i.e. without it).
Every person number is kept, 0120 included.

Protocol (`records.person_half_splits`): a seeded half split of the people (60 / 60 with 120),
train = all images of the training people; per test person a seeded floor(n / 2) of its images
are queries and the rest its gallery (a one-image person is gallery only). `lr_cameras=()`: no
image is LR here; `drfm prepare mlr` down-samples a seeded half of each person's images.
"""

from __future__ import annotations

import re
from pathlib import Path

from drfm.data.image_io import is_image_file
from drfm.data.records import UNKNOWN_CAMID, DatasetSplits, ImageRecord, person_half_splits
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

NAME = re.compile(r"^(\d{4})_(\d{3})\.jpg$")


@register_dataset("ilids")
def read_ilids(root: Path, seed: int = 0) -> DatasetSplits:
    """Read i-LIDS (PETA crops) with a seeded half split of its people."""
    records = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or not is_image_file(path):
            continue
        match = NAME.match(path.name)
        if match is None:
            raise DrfmError(f"{path}: not an i-LIDS image name (expected PPPP_NNN.jpg)")
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=UNKNOWN_CAMID))
    if not records:
        raise DrfmError(f"{root}: no i-LIDS images (expected PPPP_NNN.jpg files)")
    return person_half_splits("ilids", root, records, seed)
