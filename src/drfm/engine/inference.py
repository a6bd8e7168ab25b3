"""Test-time features of a trained run (SPEC: Test-time features), feature files, run evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drfm.config import complete_config, load_config
from drfm.data.registry import read_dataset
from drfm.engine.checkpoint import CONFIG_NAME, load_checkpoint, twin_cache_dir
from drfm.engine.extract import resolve_device
from drfm.engine.test_time import TestTimeEncoder
from drfm.errors import DrfmError
from drfm.evaluation.features_file import FeatureSet
from drfm.models.dual_model import DualResolutionModel
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info


def load_run(path: str | Path, device: str = "auto") -> tuple[dict, DualResolutionModel, dict]:
    """(config, model in eval mode on `device`, checkpoint state) of a run folder (its config.yaml
    and checkpoint.pt) or of a checkpoint file alone (the configuration stored inside it).

    DrfmError (one line) for an unavailable device, a missing path, a checkpoint of another format
    version, or a configuration that does not fit the weights.
    """
    path = Path(path)
    torch_device = resolve_device(device)
    if not path.exists():
        raise DrfmError(f"{path}: no such run folder or checkpoint file")
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise DrfmError(f"{path}: not a run folder (no {CONFIG_NAME})")
        state = load_checkpoint(path)
        config = load_config(str(path / CONFIG_NAME))
    else:
        state = load_checkpoint(path)
        config = state.get("config")
        if not isinstance(config, dict):
            raise DrfmError(f"{path}: checkpoint holds no configuration (load its run folder instead)")
        config = complete_config(config, str(path))  # checked as a run folder's config.yaml is
    try:
        # The checkpoint holds every weight: no pretrained download or file is needed.
        model = DualResolutionModel.from_config({**config, "model": {**config["model"], "pretrained": False}})
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DrfmError(f"{path}: checkpoint configuration does not fit this drfm version ({exc!r})") from None
    except RuntimeError as exc:
        raise DrfmError(f"{path}: checkpoint does not fit its configuration ({str(exc).splitlines()[0]})") from None
    return config, model.to(torch_device).eval(), state


def test_features(config: dict, model: DualResolutionModel, records, splits, progress: bool = True,
                  desc: str = "features", sr_cache: str | Path | None = None) -> np.ndarray:
    """(N, D) L2-normalised test-time features of dataset `records` (drfm.engine.test_time), each
    image low-resolution as `splits` records it (DatasetSplits.low_resolution_mask); `sr_cache`:
    a folder that keeps SR images between calls (the same features, less SR work)."""
    encoder = TestTimeEncoder(model, config, device=next(model.parameters()).device)
    low = splits.low_resolution_mask(records)
    return encoder.embed_files([r.path for r in records], low, batch_size=config["train"]["extract_batch_size"],
                               num_workers=config["train"]["num_workers"], progress=progress, desc=desc,
                               sr_cache=sr_cache).numpy()


def run_feature_arrays(run_dir: str | Path, progress: bool = True) -> dict[str, np.ndarray]:
    """The feature-file arrays (drfm.evaluation.features_file) of a run on its dataset's test split."""
    run_dir = Path(run_dir)
    config, model, _ = load_run(run_dir)
    data = config["data"]
    splits = read_dataset(data["dataset"], data["root"], seed=data["split_seed"])
    splits.check_not_empty(("query", "gallery"))
    sr_cache = twin_cache_dir(data["cache_dir"], run_dir)
    arrays = {}
    for split in ("query", "gallery"):
        records = getattr(splits, split)
        arrays[f"{split}_feats"] = test_features(config, model, records, splits, progress, desc=split,
                                                 sr_cache=sr_cache)
        arrays[f"{split}_pids"] = np.array([r.pid for r in records], dtype=np.int64)
        arrays[f"{split}_camids"] = np.array([r.camid for r in records], dtype=np.int64)
        arrays[f"{split}_paths"] = np.array([str(r.path) for r in records])
    return arrays


def extract_run(run_dir: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Write a run's test-time features as a feature file (.npz); returns its path."""
    from drfm.evaluation.features_file import save_features

    arrays = run_feature_arrays(run_dir, progress)
    save_features(out, **arrays)
    return Path(out)


def evaluate_run(run_dir: str | Path, protocol: str = "single-shot", trials: int = 10, seed: int = 0,
                 progress: bool = True, features: FeatureSet | None = None) -> dict:
    """Score a run's last model on its test split with the shared protocol (drfm.evaluation).

    `features` are the run's test features when the caller already extracted them
    (run_feature_arrays); otherwise they are extracted here. Returns the protocol's result dict plus
    run, configuration, seed and versions; also written to RUN_DIR/eval.json.
    """
    from drfm.evaluation.protocol import evaluate_features

    run_dir = Path(run_dir)
    if features is None:
        features = FeatureSet(**run_feature_arrays(run_dir, progress))
    result = evaluate_features(features, protocol=protocol, trials=trials, seed=seed)
    config = load_config(str(run_dir / CONFIG_NAME))
    result.update(run=str(run_dir), config=config["name"], train_seed=config["seed"],
                  environment=environment_info())
    write_json_atomic(run_dir / "eval.json", result)
    return result
