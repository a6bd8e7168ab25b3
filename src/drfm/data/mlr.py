"""Build a cross-resolution ("MLR") dataset folder from a dataset in its original release layout.

MLR-VIPeR, MLR-CUHK03 and MLR-Market-1501 (SPEC "Datasets and protocols") keep every camera as it
is except one, the LR camera, whose images are each down-sampled by a factor r drawn from {2, 3, 4}.
The output folder OUT holds `images/<split>/<source folder>/<pid>_c<camid>_<source stem>.png` and
`manifest.json` (format "drfm-mlr/1", read back by the `mlr` dataset reader) recording, per image,
its source file, split, re-indexed pid, camid, r, interpolation, resolution and size, so that a
published number can be rebuilt exactly.

Protocol: train = every image of the reader's training people; the test people are those of the
reader's query and gallery; query = their LR images, gallery = their HR images. Queries whose
person has no gallery image cannot be scored and are left out (MLR-Market-1501 and MLR-CUHK03 have
none; PRID 2011 with camera 1 as LR camera would); Market-1501's distractors (pid 0) are dropped.
Pids are re-indexed 0..P-1 within train and within test (sorted by the reader's pid); -1 (unknown)
stays -1; camids are the reader's (0-based).

Which images are LR:
- datasets without a real LR camera: the images of `lr_camera`, default `DEFAULT_LR_CAMERA[dataset]`
  (else camera 1, the second camera). Each is down-sampled by r = `scale_factors[k]`, k drawn by
  `numpy.random.default_rng([seed, stable_hash(source path relative to the root)])`, so r depends
  only on the seed and the file, not on order. Down-sampling is PIL
  `resize((max(1, round(w / r)), max(1, round(h / r))), Image.BICUBIC, reducing_gap=None)` (Python's
  round: halves go to the even number); PIL widens the bicubic kernel by the reduction factor, so
  it is antialiased (1-pixel black/white stripes become mid grey, not aliased stripes).
- datasets with real LR cameras (CAVIAR4REID): nothing is down-sampled; those cameras are LR.
- a user's `folder` (or any data with unknown cameras) when no `lr_camera` is given: an image is LR
  when its height is below `lr_height_threshold` pixels; nothing is down-sampled.
Every output is PNG (lossless, no timestamp), so two builds with the same inputs and seed are
byte-identical; the manifest has no timestamp and no path of OUT.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

import drfm
from drfm.data.datasets.folder import image_height
from drfm.data.datasets.mlr import MANIFEST_FORMAT, MANIFEST_NAME, load_manifest
from drfm.data.image_io import load_image
from drfm.data.records import UNKNOWN_CAMID, UNKNOWN_PID, DatasetSplits, ImageRecord
from drfm.data.registry import read_dataset
from drfm.errors import DrfmError
from drfm.utils.io import atomic_path

INTERPOLATION = "bicubic-antialias"
DEFAULT_SCALE_FACTORS = (2, 3, 4)
# LR camera per dataset. VIPeR / CUHK03: camera 1 (cam_b, view 2), the cameras the readers already
# use as query. PRID 2011: camera 0 (cam_a), the single-shot query camera, so that the 549 cam_b-only
# people stay in the gallery. Market-1501: camera 0 (c1); no published MLR paper names the camera.
DEFAULT_LR_CAMERA = {"viper": 1, "cuhk03": 1, "prid2011": 0, "market1501": 0}
FALLBACK_LR_CAMERA = 1
DISTRACTOR_PIDS = {"market1501": frozenset({0})}
SPLITS = ("train", "query", "gallery")


def stable_hash(text: str) -> int:
    """A 64-bit non-negative integer from `text` that is the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def draw_scale_factor(seed: int, source: str, scale_factors: Sequence[int]) -> int:
    """The down-sampling factor of the image at relative path `source`: seeded per image."""
    rng = np.random.default_rng([seed, stable_hash(source)])
    return int(scale_factors[int(rng.integers(len(scale_factors)))])


def downsample(image: Image.Image, r: int) -> Image.Image:
    """`image` (w x h) resized to max(1, round(w / r)) x max(1, round(h / r)), antialiased bicubic."""
    width, height = image.size
    size = (max(1, round(width / r)), max(1, round(height / r)))
    return image.resize(size, Image.BICUBIC, reducing_gap=None)


def _relative_source(record: ImageRecord, root: Path) -> str:
    """The record's path relative to `root`, POSIX style (no symlink resolution); DrfmError if outside it."""
    source = Path(os.path.relpath(os.path.abspath(record.path), os.path.abspath(root))).as_posix()
    if source.startswith("../"):
        raise DrfmError(f"{record.path}: image lies outside the dataset folder {root}")
    return source


def _check_paths(root: Path, out: Path) -> None:
    """DrfmError if OUT is inside the source, holds the source, or is an existing folder of other data."""
    root_abs, out_abs = root.resolve(), out.resolve()
    if out_abs == root_abs or root_abs in out_abs.parents:
        raise DrfmError(f"{out}: output folder is inside the source dataset folder {root}")
    if out_abs in root_abs.parents:
        raise DrfmError(f"{out}: output folder contains the source dataset folder {root}")
    if out.exists() and not out.is_dir():
        raise DrfmError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        try:
            load_manifest(out)
        except DrfmError:
            raise DrfmError(f"{out}: exists and is not an MLR build; refusing to replace it") from None


def _check_options(seed: int, scale_factors: Sequence[int], lr_height_threshold: int) -> tuple[int, ...]:
    """Validate the numeric options; return the sorted distinct scale factors."""
    if not isinstance(seed, int) or seed < 0:
        raise DrfmError(f"--seed {seed}: must be a non-negative integer")
    factors = tuple(sorted(set(scale_factors)))
    if not factors or not all(isinstance(r, int) and r >= 2 for r in factors):
        raise DrfmError(f"scale_factors {tuple(scale_factors)}: need one or more integers >= 2")
    if lr_height_threshold < 1:
        raise DrfmError(f"--lr-height-threshold {lr_height_threshold}: must be a positive number of pixels")
    return factors


def _lr_rule(dataset: str, splits: DatasetSplits, lr_camera: int | None) -> tuple[str, tuple[int, ...]]:
    """("downsample" | "native" | "height", LR cameras) for this dataset and option."""
    records = splits.train + splits.query + splits.gallery
    cameras = sorted({r.camid for r in records})
    if splits.lr_cameras:
        if lr_camera is not None:
            raise DrfmError(f"--lr-camera {lr_camera}: '{dataset}' already has real LR cameras {splits.lr_cameras}")
        return "native", tuple(splits.lr_cameras)
    if lr_camera is None and (dataset == "folder" or UNKNOWN_CAMID in cameras):
        return "height", ()
    if UNKNOWN_CAMID in cameras:
        raise DrfmError(f"--lr-camera {lr_camera}: '{dataset}' has images of unknown camera; omit it to decide by height")
    camera = DEFAULT_LR_CAMERA.get(dataset, FALLBACK_LR_CAMERA) if lr_camera is None else lr_camera
    if camera not in cameras:
        known = ", ".join(str(c) for c in cameras)
        raise DrfmError(f"--lr-camera {camera}: dataset '{dataset}' has no such camera (cameras: {known})")
    return "downsample", (camera,)


def _reindex(records: list[ImageRecord]) -> dict[int, int]:
    """Known pids of `records`, sorted, mapped to 0..P-1; UNKNOWN_PID maps to itself."""
    known = sorted({r.pid for r in records if r.pid != UNKNOWN_PID})
    return {UNKNOWN_PID: UNKNOWN_PID, **{pid: index for index, pid in enumerate(known)}}


def _plan(dataset: str, splits: DatasetSplits, is_lr: dict[ImageRecord, bool]) -> list[tuple[str, ImageRecord, int]]:
    """(split, record, re-indexed pid) of every output image, before sorting."""
    drop = DISTRACTOR_PIDS.get(dataset, frozenset())
    train = [r for r in splits.train if r.pid not in drop]
    test = [r for r in dict.fromkeys(splits.query + splits.gallery) if r.pid not in drop]
    gallery = [r for r in test if not is_lr[r]]
    gallery_pids = {r.pid for r in gallery}
    query = [r for r in test if is_lr[r] and r.pid in gallery_pids]
    train_pid, test_pid = _reindex(train), _reindex(query + gallery)
    return (
        [("train", r, train_pid[r.pid]) for r in train]
        + [("query", r, test_pid[r.pid]) for r in query]
        + [("gallery", r, test_pid[r.pid]) for r in gallery]
    )


def _output_path(split: str, source: str, pid: int, camid: int) -> str:
    """OUT-relative PNG path: images/<split>/<source folder>/<pid>_c<camid>_<source stem>.png."""
    source_path = PurePosixPath(source)
    pid_part = f"{pid:04d}" if pid != UNKNOWN_PID else "xxxx"
    cam_part = f"c{camid}" if camid != UNKNOWN_CAMID else "cx"
    return str(PurePosixPath("images", split, source_path.parent, f"{pid_part}_{cam_part}_{source_path.stem}.png"))


def _counts(entries: list[dict]) -> dict:
    """Images and known identities per split."""
    return {
        split: {
            "images": sum(e["split"] == split for e in entries),
            "ids": len({e["pid"] for e in entries if e["split"] == split and e["pid"] != UNKNOWN_PID}),
        }
        for split in SPLITS
    }


def build_mlr(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    lr_camera: int | None = None,
    seed: int = 0,
    scale_factors: Sequence[int] = DEFAULT_SCALE_FACTORS,
    lr_height_threshold: int = 64,
    progress: bool = True,
) -> dict:
    """Build the cross-resolution dataset of `dataset` at `root` into the folder `out`; return its manifest.

    `seed` seeds both the reader's random train/test split and each image's factor r. `out` is
    written atomically: it appears complete or not at all (an existing earlier build is replaced).
    Raises DrfmError for a bad option, an `out` inside the source, or an unreadable source image.
    """
    root, out = Path(root), Path(out)
    factors = _check_options(seed, scale_factors, lr_height_threshold)
    if dataset == "mlr":
        raise DrfmError(f"{root}: dataset 'mlr' is already a built dataset; build from the original release")
    _check_paths(root, out)
    options = {"lr_height_threshold": lr_height_threshold} if dataset == "folder" else {}
    splits = read_dataset(dataset, root, seed=seed, **options)
    mode, lr_cameras = _lr_rule(dataset, splits, lr_camera)
    records = dict.fromkeys(splits.train + splits.query + splits.gallery)
    if mode == "height":
        is_lr = {r: image_height(r.path) < lr_height_threshold for r in records}
    else:
        is_lr = {r: r.camid in lr_cameras for r in records}
    entries = []
    for split, record, pid in _plan(dataset, splits, is_lr):
        source = _relative_source(record, root)
        r = draw_scale_factor(seed, source, factors) if mode == "downsample" and is_lr[record] else 1
        entries.append(
            {
                "source": source,
                "path": _output_path(split, source, pid, record.camid),
                "pid": pid,
                "camid": record.camid,
                "r": r,
                "interpolation": INTERPOLATION if r > 1 else None,
                "split": split,
                "resolution": "LR" if is_lr[record] else "HR",
            }
        )
    entries.sort(key=lambda e: (SPLITS.index(e["split"]), e["pid"], e["camid"], e["source"]))
    clashes = Counter(e["path"] for e in entries)
    for entry in entries:
        if clashes[entry["path"]] > 1:
            raise DrfmError(f"{root / entry['source']}: another source file has the same name stem in its folder")
    with atomic_path(out) as tmp:
        for entry in tqdm(entries, desc=f"MLR {dataset}", unit="img", disable=not progress):
            image = load_image(root / entry["source"])
            if entry["r"] > 1:
                image = downsample(image, entry["r"])
            target = tmp / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="PNG")
            entry["width"], entry["height"] = image.size
        manifest = {
            "format": MANIFEST_FORMAT,
            "dataset": dataset,
            "source_root": str(root.resolve()),
            "seed": seed,
            "tool_version": drfm.__version__,
            "lr_cameras": list(lr_cameras),
            "scale_factors": list(factors) if mode == "downsample" else [],
            "interpolation": INTERPOLATION if mode == "downsample" else None,
            "lr_height_threshold": lr_height_threshold if mode == "height" else None,
            "counts": _counts(entries),
            "entries": entries,
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def summary(manifest: dict) -> str:
    """One paragraph: images and ids per split, the LR rule, and the histogram of factors r."""
    counts = manifest["counts"]
    parts = [f"{split} {counts[split]['images']} images / {counts[split]['ids']} ids" for split in SPLITS]
    histogram = Counter(e["r"] for e in manifest["entries"])
    if manifest["lr_height_threshold"] is not None:
        rule = f"LR = height < {manifest['lr_height_threshold']} px"
    else:
        rule = f"LR camera(s) {', '.join(str(c) for c in manifest['lr_cameras'])}"
    lr_images = sum(e["resolution"] == "LR" for e in manifest["entries"])
    r_text = ", ".join(f"r={r}: {n}" for r, n in sorted(histogram.items()))
    return (
        f"MLR {manifest['dataset']} (seed {manifest['seed']}): {'; '.join(parts)}. "
        f"{rule} ({lr_images} LR images); down-sampling factors {r_text}."
    )
