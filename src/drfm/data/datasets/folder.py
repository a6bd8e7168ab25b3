"""A user's own folder of unlabeled person crops (searched recursively), for unsupervised training.

Hidden files and folders (names starting with '.') are skipped. Every image goes to `train` with
pid -1 (unknown); query and gallery are empty. Camera ids:
1. when every file name carries a camera token (`c3`, `cam3`, `Cam3` after the start or a `_`/`-`,
   e.g. `0002_c1s1_000451_03.jpg`, `walk-cam2-17.png`), cameras are the distinct token numbers,
   sorted and numbered 0, 1, ...;
2. otherwise, when every image sits inside a sub-folder of the root, each top-level sub-folder is
   one camera (sub-folder names sorted, numbered 0, 1, ...);
3. otherwise every camid is -1 (unknown).
Low resolution is decided by pixel height: `meta["lr_paths"]` is the sorted list of the paths of
images whose height (pixels, read from the file header without decoding) is below
`lr_height_threshold` (default 64, a positive integer), and `meta["lr_height_threshold"]` records
the threshold (`drfm datasets --dataset folder` prints how many images are LR by it).
`lr_cameras=()`: resolution is not tied to a camera here.
"""

from __future__ import annotations

import re
from pathlib import Path

from drfm.data.image_io import image_height, is_image_file, is_low_resolution
from drfm.data.records import UNKNOWN_CAMID, UNKNOWN_PID, DatasetSplits, ImageRecord
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

DEFAULT_LR_HEIGHT_THRESHOLD = 64  # pixels
CAMERA_TOKEN = re.compile(r"(?:^|[_-])c(?:am)?(\d+)", re.IGNORECASE)


def _camera_ids(root: Path, paths: list[Path]) -> list[int]:
    """One camid per path, by name token, else by top-level sub-folder, else UNKNOWN_CAMID."""
    tokens = [CAMERA_TOKEN.search(path.stem) for path in paths]
    if all(tokens):
        numbers = [int(token.group(1)) for token in tokens]
        index = {number: camid for camid, number in enumerate(sorted(set(numbers)))}
        return [index[number] for number in numbers]
    parts = [path.relative_to(root).parts for path in paths]
    if all(len(p) > 1 for p in parts):
        index = {name: camid for camid, name in enumerate(sorted({p[0] for p in parts}))}
        return [index[p[0]] for p in parts]
    return [UNKNOWN_CAMID] * len(paths)


@register_dataset("folder")
def read_folder(root: Path, seed: int = 0, lr_height_threshold: int = DEFAULT_LR_HEIGHT_THRESHOLD) -> DatasetSplits:
    """Read every image under `root` (recursively) as unlabeled training data (`seed` is unused).

    `lr_height_threshold` (pixels): an image lower than this is LR. DrfmError if it is below 1.
    """
    if isinstance(lr_height_threshold, bool) or not isinstance(lr_height_threshold, int) or lr_height_threshold < 1:
        raise DrfmError(f"lr_height_threshold {lr_height_threshold!r}: must be a positive number of pixels")
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    records = [ImageRecord(path=p, pid=UNKNOWN_PID, camid=c) for p, c in zip(paths, _camera_ids(root, paths))]
    splits = DatasetSplits(
        name="folder",
        root=root,
        train=records,
        query=[],
        gallery=[],
        lr_cameras=(),
        meta={
            "lr_height_threshold": lr_height_threshold,
            "lr_paths": [p for p in paths if is_low_resolution(image_height(p), lr_height_threshold)],
        },
    )
    splits.check_not_empty(("train",))
    return splits
