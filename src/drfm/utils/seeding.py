"""Seeding and run provenance (versions, platform) recorded next to every result."""

from __future__ import annotations

import platform
import random
import sys

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment_info() -> dict:
    """Versions of the pieces that decide a result: drfm, Python, PyTorch, NumPy, device."""
    import drfm

    return {
        "drfm": drfm.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
