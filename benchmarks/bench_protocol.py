"""Time the evaluation protocols on synthetic clustered features; print and write JSON.

Default size: Q=3,000 queries, G=15,000 gallery images of 750 identities (20 each), D=2048,
10 single-shot trials, plus one multi-shot pass over the whole gallery.

    PYTHONPATH=src python benchmarks/bench_protocol.py --json bench_protocol.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from drfm.evaluation.protocol import cosine_distance, multi_shot_evaluate, single_shot_evaluate
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info


def synthetic(num_query: int, num_gallery: int, num_ids: int, dim: int, seed: int):
    """Clustered features: one random centre per identity (scale 0.3) plus unit Gaussian noise; 6 cameras."""
    rng = np.random.default_rng(seed)
    centres = 0.3 * rng.standard_normal((num_ids, dim), dtype=np.float32)
    query_pids = rng.integers(0, num_ids, num_query)
    gallery_pids = np.arange(num_gallery) % num_ids
    noise = 1.0
    query = centres[query_pids] + noise * rng.standard_normal((num_query, dim), dtype=np.float32)
    gallery = centres[gallery_pids] + noise * rng.standard_normal((num_gallery, dim), dtype=np.float32)
    return query, query_pids, rng.integers(0, 6, num_query), gallery, gallery_pids, rng.integers(0, 6, num_gallery)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", type=int, default=3000)
    parser.add_argument("--gallery", type=int, default=15000)
    parser.add_argument("--ids", type=int, default=750)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the distance product")
    parser.add_argument("--json", help="write the timings to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    q, qp, qc, g, gp, gc = synthetic(args.query, args.gallery, args.ids, args.dim, seed=0)
    t0 = time.perf_counter()
    dist = cosine_distance(q, g)
    t1 = time.perf_counter()
    single = single_shot_evaluate(dist, qp, gp, trials=args.trials, seed=0)
    t2 = time.perf_counter()
    multi = multi_shot_evaluate(dist, qp, qc, gp, gc)
    t3 = time.perf_counter()

    report = {
        "size": {"query": args.query, "gallery": args.gallery, "ids": args.ids, "dim": args.dim,
                 "trials": args.trials, "torch_threads": args.threads},
        "seconds": {"cosine_distance": t1 - t0, "single_shot_all_trials": t2 - t1,
                    "single_shot_per_trial": (t2 - t1) / args.trials, "multi_shot": t3 - t2},
        "single_shot": {k: single[k] for k in ("rank1", "rank1_std", "mAP", "mINP")},
        "multi_shot": {k: multi[k] for k in ("rank1", "mAP", "mINP")},
        "environment": environment_info(),
    }
    for name, seconds in report["seconds"].items():
        print(f"{name:24s} {seconds:8.3f} s")
    print(f"single-shot Rank-1 {single['rank1']:.2f} ± {single['rank1_std']:.2f}  mAP {single['mAP']:.2f}"
          f"   multi-shot Rank-1 {multi['rank1']:.2f}  mAP {multi['mAP']:.2f}  mINP {multi['mINP']:.2f}")
    if args.json:
        write_json_atomic(args.json, report)


if __name__ == "__main__":
    main()
