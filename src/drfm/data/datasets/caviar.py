"""CAVIAR4REID (Cheng et al., BMVC 2011): real cross-resolution person re-identification.

Layout: the release unpacks to `CAVIAR4REID/CAVIARa/PPPPNNN.jpg` (4-digit person, 3-digit image
index); root may be either `CAVIAR4REID` or `CAVIAR4REID/CAVIARa`. 72 people: 50 seen by both
cameras with 20 images each (indices 001-010 from the high-resolution camera, camid 0; 011-020
from the low-resolution camera, camid 1) and 22 seen by one camera only (10 images, 001-010).

Protocol: only the 50 two-camera people are used (a person counts as two-camera when it has images
in both index ranges). They are split at random, seeded by `seed`, into 25 for training (all their
images) and 25 for testing; query = the low-resolution images of the test people, gallery = their
high-resolution images. `lr_cameras=(1,)`.
"""

from __future__ import annotations

import re
from pathlib import Path


from drfm.data.records import DatasetSplits, ImageRecord, seeded_half_split
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

IMAGE_FOLDER = "CAVIARa"
NAME = re.compile(r"^(\d{4})(\d{3})\.jpg$")
IMAGES_PER_CAMERA = 10
HR_CAMID, LR_CAMID = 0, 1


@register_dataset("caviar")
def read_caviar(root: Path, seed: int = 0) -> DatasetSplits:
    """Read CAVIAR4REID's 50 two-camera people with a seeded 25/25 train/test split."""
    folder = root / IMAGE_FOLDER if (root / IMAGE_FOLDER).is_dir() else root
    records = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".jpg":
            continue
        match = NAME.match(path.name)
        if match is None or not 1 <= int(match.group(2)) <= 2 * IMAGES_PER_CAMERA:
            raise DrfmError(f"{path}: not a CAVIAR4REID image name (expected PPPPNNN.jpg, NNN in 001-020)")
        camid = HR_CAMID if int(match.group(2)) <= IMAGES_PER_CAMERA else LR_CAMID
        records.append(ImageRecord(path=path, pid=int(match.group(1)), camid=camid))
    if not records:
        raise DrfmError(f"{folder}: no CAVIAR4REID images (expected {IMAGE_FOLDER}/PPPPNNN.jpg)")
    hr_pids = {r.pid for r in records if r.camid == HR_CAMID}
    two_camera = sorted(hr_pids & {r.pid for r in records if r.camid == LR_CAMID})
    train_pids, test_pids = seeded_half_split(two_camera, seed)
    splits = DatasetSplits(
        name="caviar",
        root=root,
        train=[r for r in records if r.pid in train_pids],
        query=[r for r in records if r.pid in test_pids and r.camid == LR_CAMID],
        gallery=[r for r in records if r.pid in test_pids and r.camid == HR_CAMID],
        lr_cameras=(LR_CAMID,),
    )
    splits.check_not_empty()
    return splits
