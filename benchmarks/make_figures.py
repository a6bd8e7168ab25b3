"""The README's two analysis figures.

    python benchmarks/make_figures.py --viper-work DIR --demo-work DIR --out docs

Figure 6 (pseudo-label F-score per epoch of CC, A2, A4 and DRFM) reads the MLR-VIPeR runs that
benchmarks/mlr_table.py wrote under VIPER_WORK/runs. Figure 7 (same- vs cross-resolution
positive-pair distances, FC fusion (A5) vs CRFF) needs several images per person at the same
resolution, which MLR-VIPeR does not have (one image per person and camera), so it trains
a5-demo and drfm-demo on the demo world (seed 0) under DEMO_WORK, unless they are there already.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from drfm.config import load_config
from drfm.data.demo_world import generate_demo_world
from drfm.engine.inference import run_feature_arrays
from drfm.engine.runs import start_run
from drfm.engine.checkpoint import read_log
from drfm.evaluation.figures import plot_label_fscore, plot_pair_distance_histograms, positive_pair_distances


def demo_run(name: str, work: Path) -> Path:
    """Train configuration `name` on the demo world under `work` unless already done."""
    world, run_dir = work / "world", work / "runs" / name
    if not (world / "manifest.json").exists():
        generate_demo_world(world, seed=0)
    if not (run_dir / "log.jsonl").exists():
        config = load_config(name)
        config["data"].update(dataset="mlr", root=str(world), cache_dir=str(work / "cache"))
        start_run(config, run_dir, progress=False).fit()
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viper-work", required=True)
    parser.add_argument("--demo-work", required=True)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    runs = Path(args.viper_work) / "runs"
    groups = {label: [read_log(run) for run in sorted(runs.glob(f"{name}-s*"))] for label, name in
              (("CC", "cc-cpu"), ("A2", "a2-cpu"), ("A4", "a4-cpu"), ("DRFM", "drfm-cpu"))}
    print(plot_label_fscore(groups, Path(args.out) / "fig6_label_fscore.png",
                            title="MLR-VIPeR, CPU preset: pseudo-label F-score per epoch"))
    panels = {}
    for label, name in (("A5: FC fusion", "a5-demo"), ("DRFM: CRFF", "drfm-demo")):
        arrays = run_feature_arrays(demo_run(name, Path(args.demo_work)), progress=False)
        features = np.concatenate([arrays["query_feats"], arrays["gallery_feats"]])
        pids = np.concatenate([arrays["query_pids"], arrays["gallery_pids"]])
        is_lr = np.concatenate([np.ones(len(arrays["query_pids"]), bool), np.zeros(len(arrays["gallery_pids"]), bool)])
        panels[label] = positive_pair_distances(features, pids, is_lr)
    print(plot_pair_distance_histograms(panels, Path(args.out) / "fig7_pair_distances.png",
                                        title="Demo world test split: positive-pair distances"))


if __name__ == "__main__":
    main()
