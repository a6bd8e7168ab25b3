"""SHA-256 of file contents, read in 1 MiB chunks so that large files (checkpoints, weights) are
never held in memory whole."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

CHUNK_BYTES = 1 << 20


def files_sha256(paths: Iterable[str | os.PathLike]) -> str:
    """Hex SHA-256 (64 characters) of the bytes of the files `paths`, concatenated in the given order.

    Raises OSError (FileNotFoundError, ...) when a file cannot be read."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                h.update(chunk)
    return h.hexdigest()
