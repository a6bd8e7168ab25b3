"""Run folders: config, checkpoint (atomic, every epoch), per-epoch JSON log."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from drfm.errors import DrfmError, OptionError, option
from drfm.utils.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.yaml"
LOG_NAME = "log.jsonl"
ENVIRONMENT_NAME = "environment.json"
RUN_FILES = (CHECKPOINT_NAME, CONFIG_NAME, LOG_NAME, ENVIRONMENT_NAME)
FORMAT_VERSION = 1


def twin_cache_dir(configured: str | None, run_dir: str | Path) -> Path:
    """Where a run's SLR/SHR twins are cached: `configured` (data.cache_dir), else RUN_DIR/../cache
    (shared by the runs of one folder)."""
    return Path(configured) if configured else Path(run_dir).parent / "cache"


def is_temporary(path: Path) -> bool:
    """True for the hidden temporary folder an atomic write of a run file leaves when killed
    (`.checkpoint.pt.<random>.tmp`, see drfm.utils.io.atomic_path)."""
    name = path.name
    return name.endswith(".tmp") and any(name.startswith(f".{run_file}.") for run_file in RUN_FILES)


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporaries of killed writes of run files in RUN_DIR (a killed checkpoint
    write leaves up to the checkpoint's size); returns what was removed."""
    run_dir = Path(run_dir)
    stale = [p for p in run_dir.iterdir() if is_temporary(p)] if run_dir.is_dir() else []
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return stale


def rng_state() -> dict:
    """Python, NumPy and PyTorch (CPU, and CUDA when present) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, state: dict) -> Path:
    """Write `state` (plus the format version) to RUN_DIR/checkpoint.pt atomically; returns the path."""
    path = Path(run_dir) / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file or the checkpoint of a run folder; DrfmError naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise DrfmError(f"{path}: no checkpoint (train first, or point at a run folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise DrfmError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise DrfmError(f"{path}: not a drfm checkpoint of format version {FORMAT_VERSION}")
    return state


def read_log(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of a run (one JSON object per line); DrfmError naming the file if
    a line is not JSON."""
    path = Path(run_dir) / LOG_NAME
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise DrfmError(f"{path}: line {number} is not JSON") from None
    return records


def write_log(run_dir: str | Path, records: list[dict]) -> None:
    """Rewrite the whole log atomically (so a resumed run never holds lines of a lost epoch)."""
    with atomic_path(Path(run_dir) / LOG_NAME) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def check_new_run_folder(run_dir: Path) -> bool:
    """DrfmError unless RUN_DIR can hold a new run: it does not exist, is an empty folder, or
    holds only what a start that failed before its first epoch left (returns True then)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OptionError(f"{run_dir}: exists and is not a folder; choose another {option('run_dir')}")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return False
    ours = {CONFIG_NAME, CHECKPOINT_NAME, LOG_NAME, ENVIRONMENT_NAME}
    others = sorted(p.name for p in run_dir.iterdir() if p.name not in ours and not is_temporary(p))
    if (run_dir / CHECKPOINT_NAME).is_file():
        state = load_checkpoint(run_dir)
        planned = state.get("config", {}).get("train", {}).get("epochs", 0)
        if state["epoch"] > 0 or planned == 0 or others:
            raise OptionError(f"{run_dir}: already holds a run; continue it with {option('resume')} {run_dir}")
        return True
    if others:
        raise OptionError(f"{run_dir}: exists and is not a drfm run folder (holds {others[0]}); "
                          f"choose another {option('run_dir')}")
    return True


def remove_run_files(run_dir: Path) -> None:
    """Remove the files a failed start left in RUN_DIR (only drfm's own names)."""
    for name in (CHECKPOINT_NAME, LOG_NAME, CONFIG_NAME, ENVIRONMENT_NAME):
        (run_dir / name).unlink(missing_ok=True)
    remove_stale_temporaries(run_dir)


def summarise_epoch(record: dict) -> str:
    """One human-readable line per epoch."""
    parts = [f"epoch {record['epoch']:3d}", f"clusters {record['num_clusters']}",
             f"N1c {record['N1c']}/{record['N1']}", f"LR labelled {record['num_labelled_lr']}/{record['N2']}"]
    if record.get("mixed_share") is not None:
        parts.append(f"mixed {record['mixed_share']:.0%}")
    if "label_quality" in record:
        parts.append(f"label F {record['label_quality']['f1']:.3f}")
    for name, value in record.get("losses", {}).items():
        parts.append(f"L_{name} {value:.3f}")
    if "skipped" in record:
        parts.append(record["skipped"])
    return "  ".join(parts)
