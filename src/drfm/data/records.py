"""What every dataset reader returns: image records split into train / query / gallery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drfm.errors import DrfmError

UNKNOWN_PID = -1
UNKNOWN_CAMID = -1


@dataclass(frozen=True)
class ImageRecord:
    """One image: its file, person id (UNKNOWN_PID when unlabeled) and camera id (0-based)."""

    path: Path
    pid: int
    camid: int


@dataclass
class DatasetSplits:
    """A dataset's records, split. `lr_cameras` names the low-resolution camera ids, if known.

    `train` pids are never read by training; they exist only for logging pseudo-label quality.
    """

    name: str
    root: Path
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    lr_cameras: tuple[int, ...] = ()
    meta: dict = field(default_factory=dict)

    def check_not_empty(self, splits: tuple[str, ...] = ("train", "query", "gallery")) -> None:
        """Raise DrfmError naming the root and the split if any of `splits` has no image."""
        for split in splits:
            if not getattr(self, split):
                raise DrfmError(f"{self.root}: dataset '{self.name}' has an empty {split} split")

    def low_resolution_mask(self, records: list[ImageRecord]) -> np.ndarray:
        """(len(records),) bool: True for an LR image, i.e. its camera is in `lr_cameras` or its
        path is listed in `meta["lr_paths"]` (folder data); every other image is HR."""
        lr_paths = set(map(str, self.meta.get("lr_paths", ())))
        return np.array([r.camid in self.lr_cameras or str(r.path) in lr_paths for r in records], dtype=bool)

    def summary(self) -> str:
        """One line per split: images, identities, cameras."""
        lines = []
        for split in ("train", "query", "gallery"):
            recs = getattr(self, split)
            pids = {r.pid for r in recs}
            cams = {r.camid for r in recs}
            lines.append(f"{self.name} {split:8s} images {len(recs):6d}  ids {len(pids):5d}  cameras {len(cams)}")
        return "\n".join(lines)


def seeded_half_split(pids: list[int] | set[int], seed: int) -> tuple[set[int], set[int]]:
    """Split person ids into (train, test) halves by a seeded permutation of the sorted ids
    (train gets the smaller half when the count is odd)."""
    ordered = np.array(sorted(pids), dtype=np.int64)
    permuted = np.random.default_rng(seed).permutation(ordered)
    train = set(permuted[: len(ordered) // 2].tolist())
    return train, set(ordered.tolist()) - train
