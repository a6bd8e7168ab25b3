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
import zipfile
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


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read and validate a features file written by :func:`save_features`.

    Raises DrfmError (one line naming the file) for a missing or unreadable file, a missing key,
    wrong dimensions, mismatched lengths or feature sizes, NaN/inf features, or an empty side.
    """
    path = Path(path)
    if not path.is_file():
        raise DrfmError(f"{path}: features file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in REQUIRED_KEYS if key not in npz.files]
            if missing:
                raise DrfmError(f"{path}: missing key(s) {', '.join(missing)} in features file")
            arrays = {key: npz[key] for key in REQUIRED_KEYS}
            arrays.update({key: (npz[key] if key in npz.files else None) for key in PATH_KEYS})
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split())
        raise DrfmError(f"{path}: not a readable .npz features file ({reason})") from exc
    return _validated(str(path), arrays)
