"""The resolution cache: SLR (HR image down-sampled by `factor`) and SHR (LR image super-resolved).

Every derived image is computed once and kept as a PNG under

    cache_dir/<kind>/<method>/<key[:2]>/<key>.png,   key = sha256(method, version, factor, file bytes)

so a changed source file, SR backend, backend version (weights) or factor gets a new entry and an
unchanged one is never recomputed. Each PNG is written to a temporary name and renamed, so an
interrupted run leaves only complete files and the next run resumes where it stopped.
`cache_dir/<kind>-<method>-x<factor>-index.json` maps each source path of the latest runs to its
cached file (for people; the code recomputes keys).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from drfm.data.downsampling import downsample
from drfm.data.image_io import load_image
from drfm.data.records import DatasetSplits, ImageRecord
from drfm.data.sr_backends import SRBackend, get_sr_backend
from drfm.errors import DrfmError, OptionError, option
from drfm.utils.io import atomic_path, write_json_atomic

KINDS = ("slr", "shr")
SLR_METHOD = "bicubic"
SLR_VERSION = "pil-bicubic-antialias"


def cache_key(image_bytes: bytes, method: str, version: str, factor: int) -> str:
    """Hex sha256 of the method, its version, the factor and the source file's bytes."""
    h = hashlib.sha256(json.dumps([method, version, int(factor)]).encode())
    h.update(image_bytes)
    return h.hexdigest()


def cached_file(cache_dir: str | os.PathLike, kind: str, method: str, key: str) -> Path:
    """Where the view `kind` of method `method` with cache key `key` lives."""
    return Path(cache_dir) / kind / method / key[:2] / f"{key}.png"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DrfmError(f"{path}: image file does not exist") from None
    except OSError as exc:
        raise DrfmError(f"{path}: cannot read image file ({exc.strerror})") from None


def _source_paths(sources: Iterable[ImageRecord | str | os.PathLike]) -> list[str]:
    """The source paths (as strings), first occurrence order, without repeats."""
    paths = [str(s.path) if isinstance(s, ImageRecord) else str(s) for s in sources]
    return list(dict.fromkeys(paths))


def _save_png(image: Image.Image, final: Path) -> None:
    with atomic_path(final) as tmp:
        image.save(tmp, format="PNG")


def _update_index(index_file: Path, targets: dict[str, Path]) -> None:
    index: dict[str, str] = {}
    if index_file.is_file():
        try:
            index = json.loads(index_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DrfmError(f"{index_file}: cache index is not valid JSON (delete it; it is rebuilt)") from None
    index.update({source: str(target) for source, target in targets.items()})
    write_json_atomic(index_file, index)


def prepare_resolution_views(
    sources: Iterable[ImageRecord | str | os.PathLike],
    kind: str,
    cache_dir: str | os.PathLike,
    backend: str | SRBackend = "bicubic",
    factor: int = 4,
    batch_size: int = 16,
    progress: bool = True,
    weights: str | None = None,
    device: str | None = None,
) -> dict[str, Path]:
    """Make sure the `kind` view ("slr" or "shr") of every source image is cached; return where.

    `sources`: ImageRecords or image paths. "slr" down-samples by `factor` (bicubic, antialiased:
    drfm.data.downsampling.downsample; `backend`, `weights`, `device` unused); "shr" upscales by
    `factor` with SR backend `backend` (a name for `get_sr_backend(backend, weights, device)` or an
    SRBackend), `batch_size` images per backend call. Only images missing from the cache are
    decoded and computed (tqdm bar when `progress`). Returns {str(source path): cached PNG path}
    for every source.
    Raises DrfmError naming the file for a missing or undecodable image, or for a bad option.
    """
    if kind not in KINDS:
        raise DrfmError(f"unknown resolution view '{kind}' (known: {', '.join(KINDS)})")
    if int(factor) != factor or factor < 1:
        raise OptionError(f"{option('factor')} {factor}: the resolution factor must be a positive integer")
    if batch_size < 1:
        raise OptionError(f"{option('batch_size')} {batch_size}: must be at least 1")
    if kind == "slr":
        method, version = SLR_METHOD, SLR_VERSION

        def transform(images: list[Image.Image]) -> list[Image.Image]:
            return [downsample(im, factor) for im in images]

    else:
        sr = backend if isinstance(backend, SRBackend) else get_sr_backend(backend, weights=weights, device=device)
        method, version = sr.name, sr.version

        def transform(images: list[Image.Image]) -> list[Image.Image]:
            return sr.upscale(images, scale=factor)

    targets = {
        path: cached_file(cache_dir, kind, method, cache_key(_read_bytes(Path(path)), method, version, factor))
        for path in _source_paths(sources)
    }
    todo: dict[Path, str] = {}  # missing target -> first source with that content
    for path, target in targets.items():
        if not target.is_file():
            todo.setdefault(target, path)
    pending = list(todo.items())
    with tqdm(total=len(pending), desc=f"{kind} ({method} x{factor})", unit="img", disable=not progress) as bar:
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            outputs = transform([load_image(path) for _, path in chunk])
            for (target, _), image in zip(chunk, outputs, strict=True):
                _save_png(image, target)
            bar.update(len(chunk))
    if targets:
        _update_index(Path(cache_dir) / f"{kind}-{method}-x{factor}-index.json", targets)
    return targets


def resolution_sources(splits: DatasetSplits) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(HR records, LR records) of the training split, without repeated paths; LR-ness as
    DatasetSplits.low_resolution_mask decides it. Only training reads the cache: test-time
    features make their SR and DS views in memory (drfm.engine.test_time)."""
    first_by_path: dict[str, ImageRecord] = {}
    for record in splits.train:
        first_by_path.setdefault(str(record.path), record)
    unique = list(first_by_path.values())
    is_lr = splits.low_resolution_mask(unique)
    return [r for r, lr in zip(unique, is_lr) if not lr], [r for r, lr in zip(unique, is_lr) if lr]
