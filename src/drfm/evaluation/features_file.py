"""The features file: query and gallery features with identities and cameras, one `.npz`.

Keys (all numpy arrays; Q queries, G gallery images, D feature dimensions):

- ``query_feats`` (Q, D) float, ``query_pids`` (Q,) int, ``query_camids`` (Q,) int
- ``gallery_feats`` (G, D) float, ``gallery_pids`` (G,) int, ``gallery_camids`` (G,) int
- optional ``query_paths`` (Q,) and ``gallery_paths`` (G,) unicode strings (image files)

Any other key is kept in the file and ignored by :func:`load_features`. A pid below 0 marks an
unknown identity (a distractor): it never matches anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drfm.errors import DrfmError
from drfm.utils.io import atomic_path

REQUIRED_KEYS = (
    "query_feats",
    "query_pids",
    "query_camids",
    "gallery_feats",
    "gallery_pids",
    "gallery_camids",
)
PATH_KEYS = ("query_paths", "gallery_paths")
FLOAT32_MAX = float(np.finfo(np.float32).max)
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip file (.npz) with members / an empty one
NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class FeatureSet:
    """Query and gallery features of one evaluation, shapes as in the module docstring."""

    query_feats: np.ndarray
    query_pids: np.ndarray
    query_camids: np.ndarray
    gallery_feats: np.ndarray
    gallery_pids: np.ndarray
    gallery_camids: np.ndarray
    query_paths: np.ndarray | None = None
    gallery_paths: np.ndarray | None = None


def _check_side(where: str, side: str, feats: np.ndarray, pids: np.ndarray, camids: np.ndarray,
                paths: np.ndarray | None) -> None:
    """Raise DrfmError naming `where` if one side (query or gallery) is malformed."""
    if feats.ndim != 2:
        raise DrfmError(f"{where}: {side}_feats must be 2-D (N, D), got shape {feats.shape}")
    if feats.shape[0] == 0:
        raise DrfmError(f"{where}: {side} set is empty (0 rows in {side}_feats)")
    if feats.shape[1] == 0:
        raise DrfmError(f"{where}: {side}_feats has 0 feature dimensions")
    if feats.dtype.kind not in "fiu":
        raise DrfmError(f"{where}: {side}_feats must be numeric, got dtype {feats.dtype}")
    if not np.isfinite(feats).all():
        bad = int((~np.isfinite(feats)).any(axis=1).sum())
        raise DrfmError(f"{where}: {side}_feats has NaN or inf values in {bad} row(s)")
    if feats.dtype.kind == "f" and feats.dtype.itemsize > 4 and np.abs(feats).max() > FLOAT32_MAX:
        raise DrfmError(f"{where}: {side}_feats has values beyond the float32 range (|x| > {FLOAT32_MAX:.3g})")
    n = feats.shape[0]
    for name, arr in ((f"{side}_pids", pids), (f"{side}_camids", camids)):
        if arr.ndim != 1:
            raise DrfmError(f"{where}: {name} must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise DrfmError(f"{where}: {name} must hold integers, got dtype {arr.dtype}")
        if arr.shape[0] != n:
            raise DrfmError(f"{where}: {name} has {arr.shape[0]} entries but {side}_feats has {n} rows")
    if paths is not None:
        if paths.ndim != 1 or paths.shape[0] != n:
            raise DrfmError(f"{where}: {side}_paths must be 1-D with {n} entries, got shape {paths.shape}")
        if paths.dtype.kind != "U":
            raise DrfmError(f"{where}: {side}_paths must hold strings, got dtype {paths.dtype}")


def _validated(where: str, arrays: dict[str, np.ndarray | None]) -> FeatureSet:
    """Check the arrays of a features file and return them as a FeatureSet."""
    for side in ("query", "gallery"):
        _check_side(where, side, arrays[f"{side}_feats"], arrays[f"{side}_pids"],
                    arrays[f"{side}_camids"], arrays.get(f"{side}_paths"))
    dq, dg = arrays["query_feats"].shape[1], arrays["gallery_feats"].shape[1]
    if dq != dg:
        raise DrfmError(f"{where}: query features have {dq} dimensions but gallery features have {dg}")
    return FeatureSet(**arrays)


def save_features(
    path: str | os.PathLike,
    query_feats: np.ndarray,
    query_pids: np.ndarray,
    query_camids: np.ndarray,
    gallery_feats: np.ndarray,
    gallery_pids: np.ndarray,
    gallery_camids: np.ndarray,
    **extra_arrays: np.ndarray,
) -> Path:
    """Validate and write a features file atomically; return its path.

    `path` must end in ``.npz``. `extra_arrays` (e.g. ``query_paths``, ``gallery_paths`` as string
    arrays) are stored under their keyword names; object arrays are refused by the loader.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise DrfmError(f"{path}: a features file must end in .npz")
    arrays = {
        "query_feats": np.asarray(query_feats),
        "query_pids": np.asarray(query_pids),
        "query_camids": np.asarray(query_camids),
        "gallery_feats": np.asarray(gallery_feats),
        "gallery_pids": np.asarray(gallery_pids),
        "gallery_camids": np.asarray(gallery_camids),
    }
    extras = {key: np.asarray(value) for key, value in extra_arrays.items()}
    _validated(str(path), {**arrays, **{k: extras.get(k) for k in PATH_KEYS}})
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays, **extras)
    return path


def _check_npz_magic(path: Path) -> None:
    """DrfmError naming `path` unless it starts like a zip file: a .npy array, text and the like."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(NPY_MAGIC))
    except OSError as exc:
        raise DrfmError(f"{path}: cannot read features file ({exc.strerror or exc})") from None
    if head.startswith(NPY_MAGIC):
        raise DrfmError(f"{path}: not a readable .npz features file (it is a single .npy array, "
                        "the features file is an .npz of named arrays)")
    if not head.startswith(ZIP_MAGICS):
        raise DrfmError(f"{path}: not a readable .npz features file (not a zip archive)")


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read and validate a features file written by :func:`save_features`.

    Raises DrfmError (one line naming the file) for a missing, unreadable, damaged or non-.npz
    file, a missing key, an object array, wrong dimensions or dtypes, mismatched lengths or
    feature sizes, NaN/inf features, or an empty side.
    """
    path = Path(path)
    if path.is_dir():
        raise DrfmError(f"{path}: is a folder, not a features file")
    if not path.is_file():
        raise DrfmError(f"{path}: features file not found")
    _check_npz_magic(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in REQUIRED_KEYS if key not in npz.files]
            if missing:
                raise DrfmError(f"{path}: missing key(s) {', '.join(missing)} in features file")
            arrays = {key: npz[key] for key in REQUIRED_KEYS}
            arrays.update({key: (npz[key] if key in npz.files else None) for key in PATH_KEYS})
    except DrfmError:
        raise
    except Exception as exc:  # numpy and zipfile raise many types (zlib.error, MemoryError, ...) for a damaged file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DrfmError(f"{path}: not a readable .npz features file ({reason})") from None
    return _validated(str(path), arrays)
