"""Seeding and run provenance (versions, platform) recorded next to every result."""

from __future__ import annotations

import functools
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derived_rng(*keys: int) -> np.random.Generator:
    """The NumPy generator of the key sequence (seed, epoch, rank, stream, ...): every random draw
    that depends on the run's seed and position (batches, augmentation, loader workers) is derived
    this one way, so no two of them share a stream."""
    return np.random.default_rng([int(key) for key in keys])


def derived_seed(*keys: int) -> int:
    """A 62-bit integer seed from `derived_rng(*keys)` (for torch generators)."""
    return int(derived_rng(*keys).integers(2**62))


def source_commit(folder: str | Path) -> str | None:
    """The git commit of the checkout holding `folder` ("+dirty" appended when tracked files under
    `folder` differ from it), or None when `folder` holds no file tracked by a git checkout (a
    package installed into a virtual environment inside some other repository) or git is missing."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        if not git("ls-files", "--", "."):
            return None
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


@functools.cache
def drfm_source_commit() -> str | None:
    """`source_commit` of the drfm package this process imported, looked up once per process
    (three git calls) however many results record it."""
    import drfm

    return source_commit(Path(drfm.__file__).parent)


def environment_info() -> dict:
    """Versions of the pieces that decide a result: drfm (and its git commit when it runs from a
    checkout), Python, PyTorch, NumPy, device."""
    import drfm

    return {
        "drfm": drfm.__version__,
        "drfm_commit": drfm_source_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
