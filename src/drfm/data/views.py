"""Dual-resolution views of every image: what E_h sees and what E_l sees.

An HR image x_h is seen by E_h as itself and by E_l as its down-sampled twin x_sl (SLR); an LR
image x_l is seen by E_l as itself and by E_h as its super-resolved twin x_sh (SHR). The twins
come from the on-disk resolution cache (drfm.data.resolution). `origin` is 0 for an image that
is HR in the dataset and 1 for an LR one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drfm.data.records import DatasetSplits, ImageRecord

HR_ORIGIN = 0
LR_ORIGIN = 1


@dataclass
class DualViews:
    """Per image (N of them): the path E_h reads, the path E_l reads, origin, pid and camera."""

    hr_view: list[str]
    lr_view: list[str]
    origin: np.ndarray   # (N,) int64, 0 = HR image, 1 = LR image
    pids: np.ndarray     # (N,) int64, ground truth (logging and evaluation only; -1 unknown)
    camids: np.ndarray   # (N,) int64
    source: list[str]    # the dataset's own file for each image

    def __len__(self) -> int:
        return len(self.hr_view)


def build_views(records: list[ImageRecord], splits: DatasetSplits, cache_dir: str | Path,
                sr_backend: str = "bicubic", sr_weights: str | None = None, factor: int = 4,
                use_twins: bool = True, progress: bool = True) -> DualViews:
    """DualViews for `records`, computing missing SLR/SHR twins into `cache_dir` (cached, resumable).

    With `use_twins=False` (the single-encoder Cluster Contrast baseline) both views are the
    image itself.
    """
    from drfm.data.resolution import prepare_resolution_views

    origin = splits.low_resolution_mask(records).astype(np.int64)
    paths = [str(r.path) for r in records]
    hr_view, lr_view = list(paths), list(paths)
    if use_twins:
        hr_images = [r for r, o in zip(records, origin) if o == HR_ORIGIN]
        lr_images = [r for r, o in zip(records, origin) if o == LR_ORIGIN]
        slr = prepare_resolution_views(hr_images, "slr", cache_dir, backend="bicubic", factor=factor,
                                       progress=progress) if hr_images else {}
        shr = prepare_resolution_views(lr_images, "shr", cache_dir, backend=sr_backend, factor=factor,
                                       weights=sr_weights, progress=progress) if lr_images else {}
        for i, (path, o) in enumerate(zip(paths, origin)):
            if o == HR_ORIGIN:
                lr_view[i] = str(slr[path])
            else:
                hr_view[i] = str(shr[path])
    return DualViews(
        hr_view=hr_view, lr_view=lr_view, origin=origin,
        pids=np.array([r.pid for r in records], dtype=np.int64),
        camids=np.array([r.camid for r in records], dtype=np.int64),
        source=paths,
    )
