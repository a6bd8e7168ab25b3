"""Benchmark of one training epoch's stages through the real Trainer.

Stages, each timed once on the same run: `extract` (test-transform features of every training image,
both views), `cluster` (k-reciprocal Jaccard + DBSCAN, or the oracle), `cpg` (the rest of the
labelling step: CPG's LR labels; with another labels.mode, assembling the labels), `memories`
(fusion of the extracted features and the objective's reset), `load` (decoding and augmenting the
step batches), `step` (`train_step`: forward of every space, losses, backward, optimiser step,
memory update) and, on the very same batches, `encoders` (forward + backward of E_h and E_l alone, a
sum as the loss): the floor any step must pay. `step_over_encoders` is the step's cost over that
floor. Rates are images per second (rows of a stage's input). Warm-up steps are excluded from the
step timings; step and encoders alternate batch by batch, so both see the same machine load.
"""

from __future__ import annotations

import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from drfm.data.demo_world import generate_demo_world
from drfm.engine.runs import start_run
from drfm.errors import DrfmError
from drfm.labels.strategy import clustered_rows
from drfm.utils.seeding import environment_info


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_train_bench(config: dict, steps: int = 5, warmup: int = 1, people: int = 60) -> dict:
    """Time the stages of one epoch of `config` (a loaded configuration). Trains on
    config.data (dataset, root) when set, else on a seeded demo world of `people` people written
    to a temporary folder; the run folder is temporary too. Returns the report (JSON-ready)."""
    config = {**config, "train": {**config["train"], "iters_per_epoch": max(config["train"]["iters_per_epoch"],
                                                                              warmup + steps)}}
    with tempfile.TemporaryDirectory(prefix="drfm-bench-") as tmp:
        if not config["data"]["dataset"]:
            generate_demo_world(Path(tmp) / "world", num_people=people, seed=config["seed"])
            config["data"] = {**config["data"], "dataset": "mlr", "root": str(Path(tmp) / "world")}
        trainer = start_run(config, Path(tmp) / "run", progress=False)
        device, views, seconds = trainer.device, trainer.views, {}

        def timed(stage: str, work):
            _synchronize(device)
            started = time.perf_counter()
            result = work()
            _synchronize(device)
            seconds[stage] = time.perf_counter() - started
            return result

        features, stripes = timed("extract", lambda: trainer.extract(0))
        timed("labels", lambda: trainer.label(features, stripes, quality=False))
        pseudo = trainer.pseudo
        if pseudo.num_clusters == 0:
            raise DrfmError("bench train: no cluster formed on this data; set labels.oracle=true or raise labels.eps")
        cluster = sum(v for k, v in pseudo.stats["cluster_seconds"].items() if k != "total")
        seconds["cluster"], seconds["cpg"] = cluster, max(seconds.pop("labels") - cluster, 0.0)
        timed("memories", lambda: trainer.reset_objective(features))
        use_ps = bool(config["loss"]["probability_sharpening"] and pseudo.ambiguous.size > 0)
        batches = timed("load", lambda: list(islice(trainer.loader(0, use_ps), warmup + steps)))
        trainer.model.train()

        def train_step(step: int) -> None:
            hr, lr, index = batches[step]
            trainer.train_step(hr, lr, index, use_ps=use_ps, epoch=0, step=step)

        def encoders_step(step: int) -> None:
            hr, lr, _ = batches[step]
            trainer.model.zero_grad(set_to_none=True)
            loss = trainer.model.encode_hr(hr.to(device)).sum()
            if trainer.model.uses_twins:
                loss = loss + trainer.model.encode_lr(lr.to(device)).sum()
            loss.backward()

        for step in range(warmup):
            train_step(step)
            encoders_step(step)
        totals = {"step": 0.0, "encoders": 0.0}
        for step in range(warmup, warmup + steps):  # interleaved: both see the same machine load
            for stage, work in (("step", train_step), ("encoders", encoders_step)):
                timed(stage, lambda: work(step))
                totals[stage] += seconds[stage]
        seconds.update(totals)
        trainer.model.zero_grad(set_to_none=True)

    step_rows = sum(len(batch[2]) for batch in batches[warmup:])
    rows = {"extract": len(views),
            "cluster": clustered_rows(config["labels"]["mode"], pseudo.stats["N1"], pseudo.stats["N2"])[0],
            "cpg": len(views), "memories": len(views), "load": sum(len(batch[2]) for batch in batches),
            "step": step_rows, "encoders": step_rows}
    return {
        "config": config["name"], "device": str(device), "threads": torch.get_num_threads(),
        "training_images": len(views), "batch_rows": len(batches[-1][2]), "steps": steps, "warmup": warmup,
        "used_ps": use_ps, "num_clusters": pseudo.num_clusters,
        "seconds": {stage: round(value, 4) for stage, value in seconds.items()},
        "images_per_second": {stage: round(rows[stage] / max(value, 1e-9), 2) for stage, value in seconds.items()},
        "step_over_encoders": round(seconds["step"] / max(seconds["encoders"], 1e-9), 3),
        "environment": environment_info(),
    }


def format_report(report: dict) -> str:
    """Human-readable lines: one per stage (seconds, images/s), then the overhead ratio."""
    lines = [f"bench train: {report['config']} on {report['device']} ({report['threads']} threads), "
             f"{report['training_images']} training images, {report['steps']} timed steps of "
             f"{report['batch_rows']} images"]
    for stage, value in report["seconds"].items():
        lines.append(f"  {stage:<9} {value:9.3f} s  {report['images_per_second'][stage]:10.1f} images/s")
    lines.append(f"  step / encoders' own forward+backward: {report['step_over_encoders']:.3f}x (goal <= 1.15x)")
    return "\n".join(lines)
