"""Build a cross-resolution ("MLR") dataset folder from a dataset in its original release layout.

MLR-VIPeR, MLR-CUHK03 and MLR-Market-1501 (SPEC "Datasets and protocols") keep every camera as it
is except one, the LR camera, whose images are each down-sampled by a factor r drawn from {2, 3, 4}.
The output folder OUT holds `images/<split>/<source folder>/<pid>_c<camid>_<source stem>.png` and
`manifest.json` (format "drfm-mlr/1", read back by the `mlr` dataset reader) recording the LR rule
(`lr_rule`), the seed and, per image, its source file, split, re-indexed pid, camid, r,
interpolation, resolution and size, so that a published number can be rebuilt exactly.

Protocol: train = every image of the reader's training people; the test people are those of the
reader's query and gallery; query = their LR images, gallery = their HR images. Queries whose
person has no gallery image cannot be scored and are left out (MLR-Market-1501 and MLR-CUHK03 have
none; PRID 2011 with camera 1 as LR camera would); Market-1501's distractors (pid 0) are dropped.
Pids are re-indexed 0..P-1 within train and within test (sorted by the reader's pid); -1 (unknown)
stays -1; camids are the reader's (0-based, -1 unknown).

Which images are LR (`lr_rule` in the manifest):
- "downsample", datasets with several cameras and no real LR camera: the images of `lr_camera`,
  default `DEFAULT_LR_CAMERA[dataset]` (else camera 1, the second camera).
- "per-person-half", datasets without camera ids or with a single camera (3DPeS, i-LIDS,
  TownCentre: any reader but `folder` with an unknown camid or one camera) when neither
  `lr_camera` nor `lr_height_threshold` is given: `records.seeded_person_half`, i.e. per person
  (train and test alike) floor(n / 2) of its n images, picked by a permutation seeded by
  [seed, pid]. Odd counts round the LR half down, so a one-image person stays HR only and every
  query has a gallery image of its person. The test people's LR half is the reader's own query
  set. The people's train/test split is the reader's (a seeded half split). Needs person ids.
- "native", datasets with real LR cameras (CAVIAR4REID): nothing is down-sampled; those cameras
  are LR.
- "height", a user's `folder` (or a camera-less dataset with `lr_height_threshold` given): an
  image is LR when its height is below `lr_height_threshold` pixels (default 64); nothing is
  down-sampled.
Under "downsample" and "per-person-half" each LR image is down-sampled by r = `scale_factors[k]`,
k drawn by `numpy.random.default_rng([seed, stable_hash(source path relative to the root)])`, so
r depends only on the seed and the file, not on order. Down-sampling is
`drfm.data.downsampling.downsample` (to max(1, round(w / r)) x max(1, round(h / r)) pixels,
bicubic, antialiased).
Every output is PNG (lossless, no timestamp), so two builds with the same inputs and seed are
byte-identical; the manifest has no timestamp and no path of OUT.

OUT is written atomically (`drfm.utils.io.atomic_path`: built in a hidden temporary folder
`.OUT.XXXXXXXX.tmp` beside OUT, then renamed). An existing OUT is replaced only when it is empty
or holds exactly an earlier build: manifest.json and files its manifest lists, nothing else (no
other file, folder or link); otherwise the build refuses before doing anything and deletes
nothing. Temporary folders of OUT left by an interrupted build (names `.OUT.XXXXXXXX.tmp`, eight
characters of [a-z0-9_], as `tempfile.mkdtemp` makes them; nothing else) are removed when the next
build of OUT starts, and reported.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from drfm.data.datasets.folder import DEFAULT_LR_HEIGHT_THRESHOLD
from drfm.data.datasets.mlr import (
    MANIFEST_NAME,
    SPLITS,
    entry_order,
    load_manifest,
    manifest_entry,
    write_manifest,
)
from drfm.data.downsampling import INTERPOLATION, downsample
from drfm.data.image_io import image_height, is_low_resolution, load_image
from drfm.data.records import UNKNOWN_CAMID, UNKNOWN_PID, DatasetSplits, ImageRecord, seeded_person_half
from drfm.data.registry import read_dataset
from drfm.errors import DrfmError, OptionError, option
from drfm.utils.io import atomic_path

DEFAULT_SCALE_FACTORS = (2, 3, 4)
# LR camera per dataset. VIPeR / CUHK03: camera 1 (cam_b, view 2), the cameras the readers already
# use as query. PRID 2011: camera 0 (cam_a), the single-shot query camera, so that the 549 cam_b-only
# people stay in the gallery. Market-1501: camera 0 (c1); no published MLR paper names the camera.
DEFAULT_LR_CAMERA = {"viper": 1, "cuhk03": 1, "prid2011": 0, "market1501": 0}
FALLBACK_LR_CAMERA = 1
DISTRACTOR_PIDS = {"market1501": frozenset({0})}
# lr_rule values (module docstring); the first two down-sample their LR images.
DOWNSAMPLE, PER_PERSON_HALF, NATIVE, HEIGHT = "downsample", "per-person-half", "native", "height"
DOWNSAMPLING_RULES = (DOWNSAMPLE, PER_PERSON_HALF)
# tempfile.mkdtemp's random part: 8 characters of [a-z0-9_] (atomic_path's `.OUT.XXXXXXXX.tmp`).
TEMP_RANDOM_PART = r"[a-z0-9_]{8}"


def stable_hash(text: str) -> int:
    """A 64-bit non-negative integer from `text` that is the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def draw_scale_factor(seed: int, source: str, scale_factors: Sequence[int]) -> int:
    """The down-sampling factor of the image at relative path `source`: seeded per image."""
    rng = np.random.default_rng([seed, stable_hash(source)])
    return int(scale_factors[int(rng.integers(len(scale_factors)))])


def _relative_source(record: ImageRecord, root: Path) -> str:
    """The record's path relative to `root`, POSIX style (no symlink resolution); DrfmError if outside it."""
    source = Path(os.path.relpath(os.path.abspath(record.path), os.path.abspath(root))).as_posix()
    if source.startswith("../"):
        raise DrfmError(f"{record.path}: image lies outside the dataset folder {root}")
    return source


def _check_paths(root: Path, out: Path) -> None:
    """DrfmError if OUT is inside the source or holds the source."""
    root_abs, out_abs = root.resolve(), out.resolve()
    if out_abs == root_abs or root_abs in out_abs.parents:
        raise DrfmError(f"{out}: output folder is inside the source dataset folder {root}")
    if out_abs in root_abs.parents:
        raise DrfmError(f"{out}: output folder contains the source dataset folder {root}")


def _foreign_paths(out: Path, expected: set[str]) -> list[str]:
    """OUT-relative POSIX paths under `out` that are not in `expected` (files) or above one of them
    (folders), sorted; every symbolic link counts as foreign. A foreign folder is listed, not entered."""
    folders = {str(parent) for path in expected for parent in PurePosixPath(path).parents} - {"."}
    foreign = []
    for current, subfolders, files in os.walk(out):
        base = PurePosixPath(Path(current).relative_to(out).as_posix())
        for name in list(subfolders):
            relative = str(base / name)
            if (Path(current) / name).is_symlink() or relative not in folders:
                foreign.append(relative + "/")
                subfolders.remove(name)
        for name in files:
            relative = str(base / name)
            if (Path(current) / name).is_symlink() or relative not in expected:
                foreign.append(relative)
    return sorted(foreign)


def _existing_build(out: Path) -> bool:
    """Whether `out` holds an earlier build to replace: False when it does not exist or is an empty
    folder, True when it holds exactly an earlier build (manifest.json and files its entries list,
    nothing else). DrfmError (one line naming OUT) when it is a link or a file, or holds anything
    else: a user's files are never replaced."""
    if out.is_symlink():
        raise DrfmError(f"{out}: output folder is a symbolic link; give the real folder or a new path")
    if not out.exists():
        return False
    if not out.is_dir():
        raise DrfmError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return False
    try:
        manifest = load_manifest(out)
    except DrfmError:
        raise DrfmError(
            f"{out}: exists, is not empty and holds no MLR build (no valid manifest.json); "
            "refusing to replace it: choose a new --out or empty it"
        ) from None
    expected = {MANIFEST_NAME} | {
        str(PurePosixPath(e["path"])) for e in manifest["entries"] if isinstance(e, dict) and isinstance(e.get("path"), str)
    }
    foreign = _foreign_paths(out, expected)
    if foreign:
        raise DrfmError(
            f"{out}: holds {len(foreign)} file(s) or folder(s) its MLR build did not write (first: {foreign[0]}); "
            "refusing to replace it: move them away or choose a new --out"
        )
    return True


def _stale_temp_folders(out: Path) -> list[Path]:
    """Hidden temporary folders of OUT beside it (`.OUT.XXXXXXXX.tmp`, as atomic_path names them),
    sorted; links and files of that name are not listed."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.{TEMP_RANDOM_PART}\.tmp$")
    if not out.parent.is_dir():
        return []
    return sorted(p for p in out.parent.iterdir() if pattern.match(p.name) and p.is_dir() and not p.is_symlink())


def _check_options(seed: int, scale_factors: Sequence[int], lr_height_threshold: int | None) -> tuple[int, ...]:
    """Validate the numeric options; return the sorted distinct scale factors."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptionError(f"{option('seed')} {seed}: must be a non-negative integer")
    factors = tuple(sorted(set(scale_factors)))
    if not factors or not all(isinstance(r, int) and r >= 2 for r in factors):
        raise DrfmError(f"scale_factors {tuple(scale_factors)}: need one or more integers >= 2")
    if lr_height_threshold is not None and (not isinstance(lr_height_threshold, int) or lr_height_threshold < 1):
        raise OptionError(f"{option('lr_height_threshold')} {lr_height_threshold}: must be a positive number of pixels")
    return factors


def _lr_rule(
    dataset: str, splits: DatasetSplits, lr_camera: int | None, lr_height_threshold: int | None
) -> tuple[str, tuple[int, ...]]:
    """(lr_rule, LR cameras) for this dataset and options (module docstring); DrfmError naming the
    option that does not fit the dataset."""
    records = splits.train + splits.query + splits.gallery
    cameras = sorted({r.camid for r in records})
    camera_less = UNKNOWN_CAMID in cameras or len(cameras) == 1
    threshold = f"{option('lr_height_threshold')} {lr_height_threshold}"
    camera_option = option("lr_camera")
    if splits.lr_cameras:
        if lr_camera is not None:
            raise OptionError(f"{camera_option} {lr_camera}: '{dataset}' already has real LR cameras "
                              f"{splits.lr_cameras}")
        if lr_height_threshold is not None:
            raise OptionError(f"{threshold}: '{dataset}' has real LR cameras {splits.lr_cameras}; omit it")
        return NATIVE, tuple(splits.lr_cameras)
    if lr_camera is not None and lr_height_threshold is not None:
        raise OptionError(f"{threshold}: give either {camera_option} or {option('lr_height_threshold')}, not both")
    if lr_camera is None:
        if dataset == "folder" or (camera_less and lr_height_threshold is not None):
            return HEIGHT, ()
        if lr_height_threshold is not None:
            raise OptionError(f"{threshold}: '{dataset}' has cameras {cameras}; its LR images are one "
                              f"camera's ({camera_option})")
        if camera_less:
            return PER_PERSON_HALF, ()
    elif UNKNOWN_CAMID in cameras:
        raise OptionError(f"{camera_option} {lr_camera}: '{dataset}' has images of unknown camera; omit it")
    elif len(cameras) == 1:
        raise OptionError(f"{camera_option} {lr_camera}: '{dataset}' has a single camera; omit it (per-person half)")
    camera = DEFAULT_LR_CAMERA.get(dataset, FALLBACK_LR_CAMERA) if lr_camera is None else lr_camera
    if camera not in cameras:
        known = ", ".join(str(c) for c in cameras)
        raise OptionError(f"{camera_option} {camera}: dataset '{dataset}' has no such camera (cameras: {known})")
    return DOWNSAMPLE, (camera,)


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


def _lr_images(
    mode: str, records: list[ImageRecord], lr_cameras: tuple[int, ...], seed: int, threshold: int
) -> dict[ImageRecord, bool]:
    """Whether each record is LR under rule `mode` (module docstring)."""
    if mode == HEIGHT:
        return {r: is_low_resolution(image_height(r.path), threshold) for r in records}
    if mode == PER_PERSON_HALF:
        picked = seeded_person_half(records, seed)
        return {r: r.path in picked for r in records}
    return {r: r.camid in lr_cameras for r in records}


def build_mlr(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    lr_camera: int | None = None,
    seed: int = 0,
    scale_factors: Sequence[int] = DEFAULT_SCALE_FACTORS,
    lr_height_threshold: int | None = None,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> dict:
    """Build the cross-resolution dataset of `dataset` at `root` into the folder `out`; return its manifest.

    `seed` seeds the reader's random train/test split, the per-person LR half and each image's
    factor r. `lr_camera` (camid) and `lr_height_threshold` (pixels; default 64 where the height
    rule applies) choose the LR rule (module docstring). `out` is written atomically: it appears
    complete or not at all; an existing `out` is replaced only when empty or exactly an earlier
    build, and stale temporary folders of `out` are removed first. `report`, when given, is called
    with one line for each such housekeeping step (a stale folder removed, an earlier build replaced).
    Raises DrfmError for a bad option, an `out` inside the source or holding other files, or an
    unreadable source image.
    """
    root, out = Path(root), Path(os.path.abspath(out))
    factors = _check_options(seed, scale_factors, lr_height_threshold)
    if dataset == "mlr":
        raise DrfmError(f"{root}: dataset 'mlr' is already a built dataset; build from the original release")
    _check_paths(root, out)
    _existing_build(out)
    threshold = DEFAULT_LR_HEIGHT_THRESHOLD if lr_height_threshold is None else lr_height_threshold
    options = {"lr_height_threshold": threshold} if dataset == "folder" else {}
    splits = read_dataset(dataset, root, seed=seed, **options)
    mode, lr_cameras = _lr_rule(dataset, splits, lr_camera, lr_height_threshold)
    records = list(dict.fromkeys(splits.train + splits.query + splits.gallery))
    is_lr = _lr_images(mode, records, lr_cameras, seed, threshold)
    entries = []
    for split, record, pid in _plan(dataset, splits, is_lr):
        source = _relative_source(record, root)
        r = draw_scale_factor(seed, source, factors) if mode in DOWNSAMPLING_RULES and is_lr[record] else 1
        entries.append(
            manifest_entry(source, _output_path(split, source, pid, record.camid), pid, record.camid, r, split,
                           is_lr[record])
        )
    entries.sort(key=entry_order)
    clashes = Counter(e["path"] for e in entries)
    for entry in entries:
        if clashes[entry["path"]] > 1:
            raise DrfmError(f"{root / entry['source']}: another source file has the same name stem in its folder")
    for stale in _stale_temp_folders(out):
        shutil.rmtree(stale)
        if report is not None:
            report(f"Removed {stale}, a temporary folder left by an interrupted build of {out}.")
    with atomic_path(out) as tmp:
        for entry in tqdm(entries, desc=f"MLR {dataset}", unit="img", disable=not progress):
            image = load_image(root / entry["source"])
            if entry["r"] > 1:
                image = downsample(image, entry["r"])
            target = tmp / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="PNG")
            entry["width"], entry["height"] = image.size
        manifest = write_manifest(
            tmp,
            entries,
            dataset=dataset,
            source_root=str(root.resolve()),
            seed=seed,
            lr_cameras=lr_cameras,
            scale_factors=factors if mode in DOWNSAMPLING_RULES else (),
            interpolation=INTERPOLATION if mode in DOWNSAMPLING_RULES else None,
            lr_height_threshold=threshold if mode == HEIGHT else None,
            lr_rule=mode,
        )
        replaced = _existing_build(out)  # again: files may have appeared in OUT during the build
    if replaced and report is not None:
        report(f"Replaced the earlier MLR build in {out}.")
    return manifest


def summary(manifest: dict) -> str:
    """One paragraph: images and ids per split, the LR rule, and the histogram of factors r."""
    counts = manifest["counts"]
    parts = [f"{split} {counts[split]['images']} images / {counts[split]['ids']} ids" for split in SPLITS]
    histogram = Counter(e["r"] for e in manifest["entries"])
    if manifest["lr_rule"] == HEIGHT:
        rule = f"LR = height < {manifest['lr_height_threshold']} px"
    elif manifest["lr_rule"] == PER_PERSON_HALF:
        sizes = Counter((e["split"] == "train", e["pid"]) for e in manifest["entries"])
        single = sum(n == 1 for n in sizes.values())
        rule = f"LR = a seeded half of each person's images (floor(n/2) of n; one-image people, HR only: {single})"
    else:
        rule = f"LR camera(s) {', '.join(str(c) for c in manifest['lr_cameras'])}"
    lr_images = sum(e["resolution"] == "LR" for e in manifest["entries"])
    r_text = ", ".join(f"r={r}: {n}" for r, n in sorted(histogram.items()))
    return (
        f"MLR {manifest['dataset']} (seed {manifest['seed']}, rule {manifest['lr_rule']}): {'; '.join(parts)}. "
        f"{rule} ({lr_images} LR images); down-sampling factors {r_text}."
    )
