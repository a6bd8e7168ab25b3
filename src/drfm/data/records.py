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
        """(len(records),) bool: True for an LR image, i.e. its camera is in `lr_cameras`, its path
        is listed in `meta["lr_paths"]` (folder data), or `meta["resolution"]` (a built MLR folder:
        {path: "LR" | "HR"}) says "LR"; every other image is HR."""
        lr_paths = set(map(str, self.meta.get("lr_paths", ())))
        resolution = {str(path): value for path, value in self.meta.get("resolution", {}).items()}
        return np.array(
            [
                r.camid in self.lr_cameras or str(r.path) in lr_paths or resolution.get(str(r.path)) == "LR"
                for r in records
            ],
            dtype=bool,
        )

    def summary(self) -> str:
        """One line per split (images, identities, cameras), then one line saying which images
        are low-resolution and why (height threshold, LR cameras, the build's manifest, or none)."""
        lines = []
        for split in ("train", "query", "gallery"):
            recs = getattr(self, split)
            pids = {r.pid for r in recs}
            cams = {r.camid for r in recs}
            lines.append(f"{self.name} {split:8s} images {len(recs):6d}  ids {len(pids):5d}  cameras {len(cams)}")
        unique = list({r.path: r for r in self.train + self.query + self.gallery}.values())
        lr_count = int(self.low_resolution_mask(unique).sum())
        if "lr_height_threshold" in self.meta and "lr_paths" in self.meta:
            why = f"height < {self.meta['lr_height_threshold']} px"
        elif self.lr_cameras:
            why = f"camera(s) {', '.join(str(c) for c in self.lr_cameras)}"
        elif "resolution" in self.meta:
            why = "as recorded in the build's manifest"
        else:
            why = "no LR camera; `drfm prepare mlr` decides which images become LR"
        lines.append(f"{self.name} LR       images {lr_count:6d} of {len(unique)} ({why})")
        return "\n".join(lines)


def _check_seed(seed: int) -> None:
    """DrfmError unless `seed` is a non-negative integer (numpy's generators take no negative seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DrfmError(f"seed {seed!r}: must be a non-negative integer")


def seeded_half_split(pids: list[int] | set[int], seed: int) -> tuple[set[int], set[int]]:
    """Split person ids into (train, test) halves by a seeded permutation of the sorted ids
    (train gets the smaller half when the count is odd). DrfmError for a negative seed."""
    _check_seed(seed)
    ordered = np.array(sorted(pids), dtype=np.int64)
    permuted = np.random.default_rng(seed).permutation(ordered)
    train = set(permuted[: len(ordered) // 2].tolist())
    return train, set(ordered.tolist()) - train


def seeded_person_half(records: list[ImageRecord], seed: int) -> set[Path]:
    """Paths of a seeded half of each person's images: floor(n / 2) of a person's n images.

    Per person (pid >= 0), its images sorted by path are permuted by
    `numpy.random.default_rng([seed, pid]).permutation(n)` and the first floor(n / 2) are picked;
    so the pick depends only on the seed, the pid and that person's files, and a person with one
    image has none picked (at least ceil(n / 2) >= 1 images of every person are left).
    DrfmError for a negative seed or a record of unknown person (pid < 0), naming its file.
    """
    _check_seed(seed)
    by_person: dict[int, list[Path]] = {}
    for record in records:
        if record.pid < 0:
            raise DrfmError(f"{record.path}: person id unknown; a per-person half needs person ids")
        by_person.setdefault(record.pid, []).append(record.path)
    picked: set[Path] = set()
    for pid, paths in by_person.items():
        paths = sorted(set(paths))
        order = np.random.default_rng([seed, pid]).permutation(len(paths))
        picked.update(paths[i] for i in order[: len(paths) // 2])
    return picked


def person_half_splits(name: str, root: Path, records: list[ImageRecord], seed: int) -> DatasetSplits:
    """The protocol of datasets without (usable) camera ids (3DPeS, i-LIDS, TownCentre).

    People: `seeded_half_split` of every pid (train gets the smaller half when the count is odd).
    train = every image of the training people. Each test person's images are split by
    `seeded_person_half`: the floor(n / 2) picked images are queries, the other ceil(n / 2) are
    its gallery, so every query has a gallery image of its person; a test person with one image
    is gallery only (an identity no query matches). `lr_cameras=()`: no image is LR
    until `drfm prepare mlr` down-samples the same per-person half (so the MLR build's query is
    this query set, down-sampled). DrfmError (naming the root) if a split is empty.
    """
    train_pids, _ = seeded_half_split({r.pid for r in records}, seed)
    test = [r for r in records if r.pid not in train_pids]
    picked = seeded_person_half(test, seed)
    splits = DatasetSplits(
        name=name,
        root=root,
        train=[r for r in records if r.pid in train_pids],
        query=[r for r in test if r.path in picked],
        gallery=[r for r in test if r.path not in picked],
        lr_cameras=(),
    )
    splits.check_not_empty()
    return splits
