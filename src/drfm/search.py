"""Search a gallery folder for the people in query images with a trained model.

The gallery's features are kept in an index file (.npz) so that a folder is embedded once:

    format, fingerprint (the model's, drfm.api.ReIDModel.fingerprint), resolution (gallery mode),
    root, paths (G,) relative to root, sizes (G,) bytes, mtimes (G,) ns, features (G, D) float32,
    low (G,) bool

On the next search the rows of files whose (path, size, mtime) are unchanged are reused, new or
changed files are embedded, removed files are dropped; a different model or resolution mode
rebuilds the whole index. The file is written atomically. Default location:
`$XDG_CACHE_HOME/drfm/search/<sha256 of the gallery folder and mode>.npz` (~/.cache when unset).

Identities (for correct/incorrect marks) come from file names, in this order: the manifest of a
built MLR dataset folder (`drfm prepare mlr`, the demo world) holding every file; the naming
conventions of PRID 2011 (`person_PPPP.png`) and CAVIAR4REID (`PPPPNNN.jpg`); a leading integer
followed by `_` (VIPeR, Market-1501, MLR names: `0012_c1_...`). A rule applies only when it
covers every query and gallery file; otherwise identities are unknown and nothing is marked.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from drfm.api import ReIDModel, as_pil_images
from drfm.data.datasets import caviar, mlr, prid2011
from drfm.data.image_io import IMAGE_SUFFIXES, is_image_file
from drfm.errors import DrfmError, OptionError, option
from drfm.evaluation.protocol import cosine_distance
from drfm.evaluation.visualize import RankedList, ranked_lists
from drfm.utils.io import atomic_path

INDEX_FORMAT = "drfm-search-index/1"
INDEX_KEYS = ("format", "fingerprint", "resolution", "root", "paths", "sizes", "mtimes", "features", "low")
LEADING_PID = re.compile(r"^(-1|\d+)_")
NAME_RULES = (prid2011.NAME, caviar.NAME, LEADING_PID)  # group 1 of each is the person id


def gallery_files(folder: str | os.PathLike) -> list[Path]:
    """Every image file under `folder` (recursively, sorted, hidden names skipped).

    DrfmError when the folder does not exist or holds no image."""
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is a file, not a gallery folder" if folder.exists() else "gallery folder does not exist"
        raise DrfmError(f"{folder}: {problem}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p)
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DrfmError(f"{folder}: gallery holds no image ({', '.join(IMAGE_SUFFIXES)}, searched recursively)")
    return files


def default_index_path(gallery: str | os.PathLike, resolution: str) -> Path:
    """Where the index of `gallery` (embedded in `resolution` mode) lives by default."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(f"{Path(gallery).resolve()}\0{resolution}".encode()).hexdigest()[:24]
    return cache / "drfm" / "search" / f"{key}.npz"


@dataclass
class GalleryIndex:
    """The gallery's files (G), features (G, D) float32 and low-resolution flags (G,), plus how
    many rows this call embedded and reused, and the index file."""

    paths: list[Path]
    features: np.ndarray
    low: np.ndarray
    embedded: int
    reused: int
    file: Path


def _read_index(path: Path, fingerprint: str, resolution: str) -> dict | None:
    """The stored index when this model made it in this mode; None when there is nothing to reuse
    (no file, a damaged one, an index of another model or mode): the index is then rebuilt.

    DrfmError when `path` does not end in .npz, is a folder, or is a readable .npy/.npz file that
    is not a drfm search index: that is someone's data, never overwritten.
    """
    if path.suffix != ".npz":
        raise OptionError(f"{option('index_file')} {path}: a search index file must end in .npz")
    if path.is_dir():
        raise OptionError(f"{option('index_file')} {path}: is a folder; give the path of an .npz file")
    if not path.is_file():
        return None
    not_an_index = OptionError(f"{option('index_file')} {path}: exists and is not a drfm search index; refusing to "
                                f"overwrite it (delete it or choose another {option('index_file')})")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception:  # numpy and zipfile raise many types for a damaged file, which is rebuilt
        return None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise not_an_index
    with data:
        try:
            fmt = str(data["format"]) if "format" in data.files else ""
        except Exception:  # an object array or a damaged member where the format should be
            fmt = ""
        if not fmt.startswith(INDEX_FORMAT.split("/")[0] + "/"):
            raise not_an_index
        try:
            stored = {key: data[key] for key in INDEX_KEYS}
        except Exception:  # a damaged member or a missing key: rebuilt
            return None
    if (fmt != INDEX_FORMAT or str(stored["fingerprint"]) != fingerprint
            or str(stored["resolution"]) != resolution):
        return None
    columns = [stored[key] for key in ("paths", "sizes", "mtimes", "low")]
    if (any(column.ndim != 1 for column in columns) or stored["features"].ndim != 2
            or len({array.shape[0] for array in (*columns, stored["features"])}) != 1):
        return None
    return stored


def embed_files(model: ReIDModel, paths: Sequence[Path], resolution: str = "auto", batch_size: int | None = None,
                progress: bool = False, desc: str = "embed") -> tuple[np.ndarray, np.ndarray]:
    """((N, D) float32 features, (N,) bool low-resolution flags) of image files, `batch_size` at a time."""
    batch_size = batch_size or int(model.config["train"]["extract_batch_size"])
    feats, low = [np.empty((0, model.feature_dim), np.float32)], [np.empty(0, bool)]
    starts = range(0, len(paths), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) < 2, leave=False):
        images = as_pil_images(list(paths[start : start + batch_size]))
        low.append(model.low_resolution(images, resolution))
        feats.append(model.embed(images, resolution, batch_size).numpy())
    return np.concatenate(feats), np.concatenate(low)


def build_index(model: ReIDModel, gallery: str | os.PathLike, index_file: str | os.PathLike | None = None,
                resolution: str = "auto", batch_size: int | None = None, progress: bool = True) -> GalleryIndex:
    """The gallery's index, brought up to date (see the module docstring) and saved."""
    gallery = Path(gallery)
    files = gallery_files(gallery)
    index_file = Path(index_file) if index_file else default_index_path(gallery, resolution)
    relative = [str(p.relative_to(gallery)) for p in files]
    stats = [p.stat() for p in files]
    sizes = np.array([s.st_size for s in stats], dtype=np.int64)
    mtimes = np.array([s.st_mtime_ns for s in stats], dtype=np.int64)
    stored = _read_index(index_file, model.fingerprint, resolution)
    known = {} if stored is None else {
        key: row for row, key in enumerate(zip(stored["paths"].tolist(), stored["sizes"].tolist(),
                                               stored["mtimes"].tolist()))}
    rows = np.array([known.get(key, -1) for key in zip(relative, sizes.tolist(), mtimes.tolist())], dtype=np.int64)
    todo = np.flatnonzero(rows < 0)
    features = np.empty((len(files), model.feature_dim), np.float32)
    low = np.zeros(len(files), bool)
    reuse = np.flatnonzero(rows >= 0)
    if len(reuse):
        features[reuse] = stored["features"][rows[reuse]]
        low[reuse] = stored["low"][rows[reuse]]
    if len(todo):
        features[todo], low[todo] = embed_files(model, [files[i] for i in todo], resolution, batch_size,
                                                progress, desc="gallery")
    if len(todo) or stored is None or len(stored["paths"]) != len(files):
        with atomic_path(index_file) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, format=INDEX_FORMAT, fingerprint=model.fingerprint, resolution=resolution,
                         root=str(gallery.resolve()), paths=np.array(relative), sizes=sizes, mtimes=mtimes,
                         features=features, low=low)
    return GalleryIndex(paths=files, features=features, low=low, embedded=len(todo), reused=len(reuse),
                        file=index_file)


def _manifest_pids(paths: list[Path]) -> dict[Path, int]:
    """{resolved path: pid} for the paths listed in a built MLR dataset manifest found in one of
    their parent folders."""
    pids: dict[Path, int] = {}
    seen: set[Path] = set()
    for folder in {p.resolve().parent for p in paths}:
        for root in (folder, *folder.parents):
            if root in seen:
                break
            seen.add(root)
            if (root / mlr.MANIFEST_NAME).is_file():
                try:
                    manifest = mlr.load_manifest(root)
                except DrfmError:
                    continue
                for entry in manifest["entries"]:
                    if isinstance(entry, dict) and isinstance(entry.get("pid"), int) and "path" in entry:
                        pids[root.joinpath(*Path(str(entry["path"])).parts)] = entry["pid"]
    return pids


def file_identities(paths: Sequence[Path]) -> np.ndarray | None:
    """(N,) int64 person ids of image files by the rules of the module docstring, or None when no
    rule covers every file. -1 marks a file its rule labels unknown (Market-1501 junk)."""
    paths = [Path(p) for p in paths]
    manifest = _manifest_pids(paths)
    resolved = [p.resolve() for p in paths]
    if all(p in manifest for p in resolved):
        return np.array([manifest[p] for p in resolved], dtype=np.int64)
    for rule in NAME_RULES:
        matches = [rule.match(p.name) for p in paths]
        if all(matches):
            return np.array([int(m.group(1)) for m in matches], dtype=np.int64)
    return None


@dataclass
class SearchResult:
    """Queries (Q files) against an indexed gallery: (Q, G) cosine distances, query low-resolution
    flags, and identities (None when unknown)."""

    queries: list[Path]
    query_low: np.ndarray
    query_sizes: list[tuple[int, int]]
    distances: np.ndarray
    index: GalleryIndex
    query_pids: np.ndarray | None
    gallery_pids: np.ndarray | None

    def ranked(self, top: int) -> list[RankedList]:
        """The top `top` matches of every query, with marks when identities are known."""
        notes = []
        for i, ((width, height), low) in enumerate(zip(self.query_sizes, self.query_low)):
            note = f"{width}x{height} px, embedded as {'low' if low else 'high'} resolution"
            if self.query_pids is not None and self.query_pids[i] >= 0:
                note += f", id {self.query_pids[i]}"
            notes.append(note)
        return ranked_lists(self.queries, self.index.paths, self.distances, top, self.query_pids,
                            self.gallery_pids, notes)


def search(model: ReIDModel, queries: Sequence[str | os.PathLike], gallery: str | os.PathLike,
           index_file: str | os.PathLike | None = None, query_resolution: str = "auto",
           gallery_resolution: str = "auto", batch_size: int | None = None, progress: bool = True) -> SearchResult:
    """Embed `queries` (image files) and the gallery folder (through its index) and compare them.

    Every query is decoded before the gallery is touched, so a bad query fails fast (DrfmError).
    """
    if not queries:
        raise OptionError(f"{option('queries')}: give at least one query image")
    query_paths = [Path(q) for q in queries]
    for path in query_paths:
        if path.is_dir():
            raise DrfmError(f"{path}: a query must be an image file, not a folder")
    images = as_pil_images(query_paths)
    query_low = model.low_resolution(images, query_resolution)
    query_feats = model.embed(images, query_resolution, batch_size).numpy()
    index = build_index(model, gallery, index_file, gallery_resolution, batch_size, progress)
    pids = file_identities(query_paths + index.paths)
    return SearchResult(
        queries=query_paths, query_low=query_low, query_sizes=[im.size for im in images],
        distances=cosine_distance(query_feats, index.features), index=index,
        query_pids=None if pids is None else pids[: len(query_paths)],
        gallery_pids=None if pids is None else pids[len(query_paths):],
    )
