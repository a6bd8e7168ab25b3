"""Atomic writes: a file or folder appears complete under its final name, or not at all.

Also the checks a command makes on its output paths before it starts working, so that a path
that can never be written fails in a second with one line instead of after the work.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from drfm.errors import DrfmError


def _make_parent(final: Path) -> None:
    """Create the folder `final` goes into; a file in the way is an error naming `final`."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(final)) from None


def _about_final(exc: OSError, tmp: Path, final: Path) -> OSError:
    """`exc` naming `final` when it names the temporary path (or nothing), else `exc` itself."""
    if exc.errno is None:
        return exc
    if exc.filename is not None and tmp not in (Path(exc.filename), *Path(exc.filename).parents):
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(final))


def _replace(target: Path, final: Path, tmp: Path) -> None:
    """Move the finished `target` to `final`. A folder replaces a folder (the old one is put back
    if the move fails); a file never replaces a folder, nor a folder a file."""
    final_is_folder = final.is_dir() and not final.is_symlink()
    if final_is_folder and not target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(final))
    if target.is_dir() and final.exists() and not final_is_folder:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final))
    if not final_is_folder:
        os.replace(target, final)
        return
    old = tmp / f"{final.name}.replaced"
    os.replace(final, old)
    try:
        os.replace(target, final)
    except BaseException:
        os.replace(old, final)
        raise


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success rename it to `final`, on error remove it.

    Works for files and folders: the caller writes whatever it likes at the yielded path. A folder
    replaces an existing folder (callers check first that it is theirs to replace); a file never
    replaces a folder (IsADirectoryError). Whatever fails, no temporary file or folder is left and
    `final` is as it was. An OSError about the temporary path, or about no path (a full disk while
    writing), is raised again naming `final`.
    """
    final = Path(final)
    _make_parent(final)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(final)) from None
    try:
        yield tmp / final.name
        _replace(tmp / final.name, final, tmp)
    except OSError as exc:
        renamed = _about_final(exc, tmp, final)
        if renamed is exc:
            raise
        raise renamed from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _writable_parent(path: Path, option: str) -> None:
    """DrfmError naming `option` when the nearest existing folder above `path` is a file or not writable."""
    ancestor = next((a for a in path.absolute().parents if a.exists()), Path(path.absolute().anchor))
    if not ancestor.is_dir():
        raise DrfmError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DrfmError(f"{option} {path}: cannot write in {ancestor} (permission denied)")


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """`path` as a Path when a file can be written there; else DrfmError naming `option` and `path`:
    an existing folder, a file in the way above it, or a folder above it that is not writable."""
    path = Path(path)
    if path.is_dir():
        raise DrfmError(f"{option} {path}: is a folder; give the path of a file")
    _writable_parent(path, option)
    return path


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """`path` as a Path when it is a folder or one can be made there; else DrfmError naming
    `option` and `path`: an existing file, a file in the way above it, or an unwritable parent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DrfmError(f"{option} {path}: exists and is not a folder")
    if not path.is_dir():
        _writable_parent(path, option)
    return path
