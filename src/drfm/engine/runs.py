"""Starting and resuming a training run: everything around the epoch loop of `Trainer`.

`start_run` checks what can fail (configuration, run folder, device, backbone weights, dataset,
clustering settings against its size) before it writes a file; `resume_run` continues a run from
its checkpoint, offline, reading what `Trainer.checkpoint_state` saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from drfm.config import load_config, save_config, validate_config
from drfm.data.registry import read_dataset
from drfm.data.views import build_views
from drfm.engine import distributed
from drfm.engine.checkpoint import (CHECKPOINT_NAME, CONFIG_NAME, ENVIRONMENT_NAME, check_new_run_folder,
                                    load_checkpoint, read_log, remove_run_files, remove_stale_temporaries,
                                    save_checkpoint, set_rng_state, twin_cache_dir, write_log)
from drfm.engine.trainer import Trainer
from drfm.errors import DrfmError, OptionError, option
from drfm.labels.color import calibrated_histograms, load_thumbnails
from drfm.labels.strategy import check_label_settings
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info


def start_run(config: dict, run_dir: str | Path, progress: bool = True, needs_test_split: bool = False) -> Trainer:
    """A new run of `config` in RUN_DIR, ready to `fit()`.

    Checked before a file is written: the configuration, RUN_DIR (it must not hold a run: use
    `resume_run`), the device, the backbone weights, the dataset (with a query and gallery split
    when `needs_test_split`, e.g. for `--eval`) and the clustering settings against its size. A
    RUN_DIR holding only what a failed start left (our own files and at most the untrained epoch-0
    checkpoint of a run meant to train) is replaced, with a note saying so.
    """
    run_dir = Path(run_dir)
    validate_config(config)
    failed_start = check_new_run_folder(run_dir)
    trainer = Trainer(config, run_dir, progress)
    load_training_data(trainer, needs_test_split)
    if distributed.is_main():
        if failed_start:
            print(f"{run_dir}: replacing the untrained start of an earlier start that did not finish an epoch",
                  file=sys.stderr)
            remove_run_files(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / CONFIG_NAME)
        write_json_atomic(run_dir / ENVIRONMENT_NAME, {**environment_info(), "world_size": distributed.world_size()})
        save_checkpoint(run_dir, trainer.checkpoint_state(0, []))  # the untrained start, resumable too
        write_log(run_dir, [])
    distributed.barrier()
    return trainer


def resume_run(run_dir: str | Path, progress: bool = True, needs_test_split: bool = False) -> Trainer:
    """The run in RUN_DIR, ready to `fit()` from where its checkpoint left it.

    The model is built without pretrained weights (the checkpoint holds every weight), so a run
    resumes offline whatever its backbone. The log of the epochs done comes from the checkpoint,
    so a line lost by a kill between checkpoint and log write comes back. The dataset is read and
    checked as in `start_run`.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_NAME).is_file():
        raise DrfmError(f"{run_dir}: not a run folder (no {CONFIG_NAME})")
    state = load_checkpoint(run_dir)
    trainer = Trainer(load_config(str(run_dir / CONFIG_NAME)), run_dir, progress, pretrained=False)
    if distributed.is_main():
        remove_stale_temporaries(run_dir)
    try:
        for part in ("model", "optimizer", "scheduler"):
            getattr(trainer, part).load_state_dict(state[part])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise DrfmError(f"{run_dir / CHECKPOINT_NAME}: does not fit {run_dir / CONFIG_NAME} "
                        f"({str(exc).splitlines()[0]})") from None
    trainer.start_epoch = state["epoch"]
    trainer.log = list(state["log"] if "log" in state else read_log(run_dir))[: trainer.start_epoch]
    load_training_data(trainer, needs_test_split)
    set_rng_state(state["rng"])
    return trainer


def load_training_data(trainer: Trainer, needs_test_split: bool = False) -> None:
    """Give `trainer` its training split and views (twins computed or read from the cache), and
    with labels.color_weight > 0 the colour histograms of the training images.

    DrfmError before any twin is computed when the dataset is missing or empty, when
    `needs_test_split` and it has no query or gallery images, or when the clustering settings do
    not fit the number of training images. Under torchrun rank 0 fills the cache first.
    """
    config = trainer.config
    data, pre = config["data"], config["preprocess"]
    if not data["dataset"] or not data["root"]:
        raise OptionError(f"no dataset: pass {option('dataset')} NAME {option('root')} DIR "
                          "(or set data.dataset, data.root)")
    trainer.splits = read_dataset(data["dataset"], data["root"], seed=data["split_seed"])
    trainer.splits.check_not_empty(("train", "query", "gallery") if needs_test_split else ("train",))
    check_label_settings(config, trainer.splits)
    cache = twin_cache_dir(data["cache_dir"], trainer.run_dir)
    for turn in ("main", "others"):  # rank 0 fills the twin cache, then the others read it
        if distributed.is_main() == (turn == "main"):
            trainer.views = build_views(trainer.splits.train, trainer.splits, cache,
                                        sr_backend=pre["sr_backend"], sr_weights=pre["sr_weights"],
                                        factor=pre["factor"], use_twins=trainer.model.uses_twins,
                                        progress=trainer.progress)
        distributed.barrier()
    if config["labels"]["color_weight"] > 0:
        trainer.color = training_color_histograms(trainer, config["labels"]["color_calibration"])


def training_color_histograms(trainer: Trainer, calibration: str) -> torch.Tensor:
    """(N, C) colour histograms of every training image (`drfm.labels.color`), under
    labels.color_calibration; each process reads its shard of the images and, to calibrate, the
    shards' pixel counts are summed, so every process maps the same colours."""
    indices = list(distributed.shard(len(trainer.views)))
    thumbnails = load_thumbnails([trainer.views.source[i] for i in indices], progress=trainer.progress)

    def total_counts(counts: np.ndarray) -> np.ndarray:
        local = torch.from_numpy(counts).to(trainer.device)[None]
        return distributed.gather_rows(local).sum(dim=0).cpu().numpy()

    local = calibrated_histograms(thumbnails, trainer.views.origin[indices], calibration, total_counts=total_counts)
    return distributed.gather_shards(local, len(trainer.views), trainer.device)
