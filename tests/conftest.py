"""Shared fixtures: a tiny untrained run on a generated world, and the model loaded from it.

Module-scoped, so every test module builds its own run and cannot disturb another's files.
"""

import os
from pathlib import Path

# Under pytest-xdist (`-n`, on by default in pyproject.toml) each worker gets an equal share of the
# cores for torch and for the processes its tests start, instead of every worker using all of them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest  # noqa: E402
import torch  # noqa: E402

import drfm  # noqa: E402
from drfm.api import ReIDModel
from fixtures_runs import make_run, make_world


if _WORKERS > 1:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per core, at most 4 (each holds its own torch and module fixtures)."""
    return max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(world folder, run folder) of fixtures_runs.make_world / make_run."""
    root = tmp_path_factory.mktemp("tiny")
    world = make_world(root)
    return world, make_run(root, world)


@pytest.fixture(scope="module")
def model(tiny) -> ReIDModel:
    """drfm.load of the tiny run, on the CPU."""
    return drfm.load(tiny[1], device="cpu")
