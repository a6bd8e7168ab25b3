"""Train and evaluate named runs x seeds on one MLR dataset; write results JSON and a Markdown table.

    python benchmarks/mlr_table.py --root MLR_DIR --work DIR --seeds 0,1,2 --jobs 2 \
        --runs "untrained=drfm-cpu:train.epochs=0" drfm=drfm-cpu cc=cc-cpu \
               "oracle drfm=drfm-cpu:labels.oracle=true" "oracle cc=cc-cpu:labels.oracle=true"

A run is `LABEL=CONFIG[:key=value[:key=value...]]`: the configuration, with overrides. Each
(run, seed) trains into DIR/runs/<label>-s<seed> (spaces become '-') with `seed=<seed>` and
evaluates with the single-shot protocol (10 trials, seed 0); a finished run (eval.json present)
is skipped and an interrupted one resumed, so the script can be stopped and started again; a
run's minutes (DIR/runs/.../minutes.json) add up over the invocations that ended, failed or not
(a killed one's minutes are lost).
--jobs N runs N trainings at once, each with one CPU thread (OMP_NUM_THREADS=1).
Writes DIR/results.json (every run: metrics, minutes, per-epoch log, configuration, versions)
and DIR/table.md (mean ± std over the seeds, population std, with minutes per run). Both keep the
records of earlier invocations on the same work folder and dataset (a run named again replaces
its record), so several invocations build one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from drfm.engine.checkpoint import read_log
from drfm.utils.io import atomic_path, write_json_atomic
from drfm.utils.seeding import environment_info

METRICS = ("rank1", "rank5", "rank10", "mAP")


def parse_run(text: str) -> tuple[str, str, list[str]]:
    """'LABEL=CONFIG:k=v:k=v' -> (label, config, overrides)."""
    label, _, spec = text.partition("=")
    config, *overrides = spec.split(":")
    if not label or not config:
        raise SystemExit(f"--runs {text!r}: expected LABEL=CONFIG[:key=value...]")
    return label, config, overrides


def run_dir_of(work: Path, label: str, seed: int) -> Path:
    return work / "runs" / f"{label.replace(' ', '-')}-s{seed}"


def train_and_evaluate(root: Path, work: Path, label: str, config: str, overrides: list[str], seed: int) -> dict:
    """Train (or resume) one run with `drfm train --eval` in a subprocess; returns its record."""
    run_dir = run_dir_of(work, label, seed)
    timing_file = run_dir / "minutes.json"
    if not (run_dir / "eval.json").exists():
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        if (run_dir / "checkpoint.pt").exists():
            command = ["train", "--resume", str(run_dir)]
        else:
            command = ["train", "--config", config, "--dataset", "mlr", "--root", str(root), "--out", str(run_dir),
                       f"seed={seed}", f"data.cache_dir={work / 'cache'}", *overrides]
        spent = json.loads(timing_file.read_text())["minutes"] if timing_file.exists() else 0.0
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "drfm", *command, "--eval", "--quiet"], env=env,
                              capture_output=True, text=True)
        if run_dir.is_dir():  # minutes add up over the invocations that failed and the one that finishes
            write_json_atomic(timing_file, {"minutes": spent + (time.perf_counter() - started) / 60})
        if done.returncode != 0:
            raise SystemExit(f"{run_dir}: drfm train failed: {done.stderr.strip()}")
    result = json.loads((run_dir / "eval.json").read_text())
    return {"label": label, "config": config, "overrides": overrides, "seed": seed,
            **{k: result[k] for k in METRICS + ("rank1_std",)},
            "minutes": json.loads(timing_file.read_text())["minutes"], "log": read_log(run_dir)}


def table(records: list[dict], labels: list[str]) -> str:
    """Markdown: mean ± std over seeds of Rank-1/5/10 and mAP, final label F, minutes per run."""
    lines = ["| run | seeds | Rank-1 | Rank-5 | Rank-10 | mAP | final label F | minutes per run |",
             "|---|---|---|---|---|---|---|---|"]
    for label in labels:
        rows = sorted((r for r in records if r["label"] == label), key=lambda r: r["seed"])
        if not rows:
            continue
        cells = [f"{np.mean([r[m] for r in rows]):.1f} ± {np.std([r[m] for r in rows]):.1f}" for m in METRICS]
        final_f = [r["log"][-1]["label_quality"]["f1"] for r in rows if r["log"] and "label_quality" in r["log"][-1]]
        f_cell = f"{np.mean(final_f):.2f} ± {np.std(final_f):.2f}" if final_f else "-"
        minutes = ", ".join(f"{r['minutes']:.1f}" for r in rows)
        lines.append(f"| {label} | {','.join(str(r['seed']) for r in rows)} | {' | '.join(cells)} | {f_cell} "
                     f"| {minutes} |")
    return "\n".join(lines) + "\n"


def earlier_records(work: Path, root: Path, replaced: set[tuple[str, int]]) -> list[dict]:
    """The records of WORK/results.json written for the same dataset root, less the (label, seed)
    pairs in `replaced`; none when there is no such file."""
    path = work / "results.json"
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    if earlier.get("root") != str(root):
        raise SystemExit(f"{path}: written for dataset {earlier.get('root')!r}, not {str(root)!r}; use another --work")
    return [record for record in earlier["records"] if (record["label"], record["seed"]) not in replaced]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="MLR dataset folder (drfm prepare mlr)")
    parser.add_argument("--work", required=True, help="folder for runs, cache and results")
    parser.add_argument("--runs", nargs="+", required=True, help="LABEL=CONFIG[:key=value...] per run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, one CPU thread each")
    args = parser.parse_args()
    runs = [parse_run(text) for text in args.runs]
    seeds = [int(s) for s in args.seeds.split(",")]
    work, root = Path(args.work), Path(args.root)
    jobs = [(label, config, overrides, seed) for seed in seeds for label, config, overrides in runs]
    records = earlier_records(work, root, {(label, seed) for label, _, _, seed in jobs})
    labels = list(dict.fromkeys([record["label"] for record in records] + [label for label, _, _ in runs]))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_and_evaluate, root, work, *job[:3], job[3]) for job in jobs]
        for future in futures:
            record = future.result()
            records.append(record)
            print(f"{record['label']} seed {record['seed']}: Rank-1 {record['rank1']:.1f} mAP {record['mAP']:.1f} "
                  f"({record['minutes']:.1f} min)", flush=True)
            write_json_atomic(work / "results.json", {"root": str(root), "records": records,
                                                      "environment": environment_info()})
            with atomic_path(work / "table.md") as tmp:
                tmp.write_text(table(records, labels))


if __name__ == "__main__":
    main()
