"""Train and evaluate several configurations x seeds on one MLR dataset; write a results table.

    python benchmarks/mlr_viper_table.py --root MLR_VIPER --work DIR \
        --configs drfm-cpu,cc-cpu,a8-cpu,a2-cpu --seeds 0,1,2

Runs are taken seed by seed (all configurations of seed 0 first), each into DIR/runs/NAME-sS; a
finished run (eval.json present) is skipped and an interrupted one resumed, so the script can be
stopped and started again. Writes DIR/results.json (every run: metrics, seconds, log) and
DIR/table.md (mean +- std over the seeds finished so far).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from drfm.config import load_config
from drfm.engine.checkpoint import read_log
from drfm.engine.inference import evaluate_run
from drfm.engine.trainer import Trainer
from drfm.utils.io import atomic_path, write_json_atomic
from drfm.utils.seeding import environment_info

METRICS = ("rank1", "rank5", "rank10", "mAP")


def run_one(config_name: str, seed: int, root: Path, work: Path) -> dict:
    """Train (or resume) and evaluate one configuration with one seed; returns its record."""
    run_dir = work / "runs" / f"{config_name}-s{seed}"
    timing_file = run_dir / "seconds.json"
    if not (run_dir / "eval.json").exists():
        start = time.perf_counter()
        if (run_dir / "checkpoint.pt").exists():
            trainer = Trainer.resume(run_dir, progress=False)
        else:
            config = load_config(config_name, [f"seed={seed}"])
            config["data"].update(dataset="mlr", root=str(root), cache_dir=str(work / "cache"))
            trainer = Trainer.create(config, run_dir, progress=False)
        trainer.fit()
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        evaluate_run(run_dir, progress=False)
        write_json_atomic(timing_file, {"train": train_seconds, "evaluate": time.perf_counter() - start})
    result = json.loads((run_dir / "eval.json").read_text())
    return {"config": config_name, "seed": seed, **{k: result[k] for k in METRICS + ("rank1_std",)},
            "seconds": json.loads(timing_file.read_text()), "log": read_log(run_dir)}


def table(records: list[dict], configs: list[str]) -> str:
    """Markdown: mean +- std over seeds of Rank-1/5/10 and mAP, and minutes per run."""
    lines = ["| config | seeds | Rank-1 | Rank-5 | Rank-10 | mAP | minutes per run (train + eval) |",
             "|---|---|---|---|---|---|---|"]
    for name in configs:
        rows = [r for r in records if r["config"] == name]
        if not rows:
            continue
        cells = [f"{np.mean([r[m] for r in rows]):.1f} ± {np.std([r[m] for r in rows]):.1f}" for m in METRICS]
        minutes = [(r["seconds"]["train"] + r["seconds"]["evaluate"]) / 60 for r in rows]
        lines.append(f"| {name} | {','.join(str(r['seed']) for r in rows)} | {' | '.join(cells)} | "
                     f"{np.mean(minutes):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="MLR dataset folder (drfm prepare mlr)")
    parser.add_argument("--work", required=True, help="folder for runs, cache and results")
    parser.add_argument("--configs", default="drfm-cpu,cc-cpu,a8-cpu,a2-cpu")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    configs, seeds = args.configs.split(","), [int(s) for s in args.seeds.split(",")]
    work = Path(args.work)
    records = []
    for seed in seeds:
        for name in configs:
            record = run_one(name, seed, Path(args.root), work)
            records.append(record)
            print(f"{name} seed {seed}: Rank-1 {record['rank1']:.1f} mAP {record['mAP']:.1f} "
                  f"({record['seconds']['train'] / 60:.1f} min)", flush=True)
            write_json_atomic(work / "results.json", {"records": records, "environment": environment_info()})
            with atomic_path(work / "table.md") as tmp:
                tmp.write_text(table(records, configs))


if __name__ == "__main__":
    main()
