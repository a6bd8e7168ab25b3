"""Dataset registry: a new dataset is one new module in drfm.data.datasets that registers a reader."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Callable, Protocol

from drfm.data.records import DatasetSplits
from drfm.errors import DrfmError


class DatasetReader(Protocol):
    def __call__(self, root: Path, seed: int = 0, **options) -> DatasetSplits: ...


_READERS: dict[str, DatasetReader] = {}


def register_dataset(name: str) -> Callable[[DatasetReader], DatasetReader]:
    """Decorator: register `reader(root, seed=0, **options) -> DatasetSplits` under `name`."""

    def wrap(reader: DatasetReader) -> DatasetReader:
        if name in _READERS:
            raise ValueError(f"dataset '{name}' registered twice")
        _READERS[name] = reader
        return reader

    return wrap


def _import_all() -> None:
    import drfm.data.datasets as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def dataset_names() -> list[str]:
    """Names of every registered dataset, sorted."""
    _import_all()
    return sorted(_READERS)


def read_dataset(name: str, root: str | Path, seed: int = 0, **options) -> DatasetSplits:
    """Read dataset `name` from its original release layout under `root`.

    Raises DrfmError for an unknown name, a missing folder or a layout that does not fit.
    """
    _import_all()
    if name not in _READERS:
        raise DrfmError(f"unknown dataset '{name}' (known: {', '.join(sorted(_READERS))})")
    root = Path(root)
    if not root.is_dir():
        raise DrfmError(f"{root}: dataset folder does not exist")
    accepted = inspect.signature(_READERS[name]).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DrfmError(f"dataset '{name}' takes no option {', '.join(unknown)}")
    return _READERS[name](root, seed=seed, **options)
