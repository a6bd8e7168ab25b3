"""Shared fixtures: a tiny untrained run on a generated world, and the model loaded from it.

Module-scoped, so every test module builds its own run and cannot disturb another's files.
"""

from pathlib import Path

import pytest

import drfm
from drfm.api import ReIDModel
from fixtures_runs import make_run, make_world


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
