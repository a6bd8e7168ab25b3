"""`drfm demo`: generate the synthetic demo world, train CC and DRFM on it, print a result table."""

from __future__ import annotations

import argparse
import shutil
import time

from drfm.cli import non_negative_int, positive_int
from drfm.utils.io import check_output_folder

HELP = "offline end-to-end demo: synthetic cross-resolution world, train CC and DRFM on CPU, print results"
MARKER = ".drfm-demo"


def people_count(text: str) -> int:
    """An argparse type: the number of synthetic people, at least 2 (one to train on, one to test)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (one person to train on, one to test), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm demo`."""
    parser.add_argument("--out", default="drfm-demo", help="folder for the world, runs and results (default: ./drfm-demo)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the world and of training")
    parser.add_argument("--people", type=people_count, default=80,
                        help="number of synthetic people (half train, half test)")
    parser.add_argument("--configs", default="cc-demo,drfm-demo", help="comma-separated configurations to compare")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Build the world, train and evaluate every configuration, print and write the table."""
    from drfm.config import load_config
    from drfm.data.demo_world import generate_demo_world
    from drfm.engine.inference import run_feature_arrays
    from drfm.engine.runs import start_run
    from drfm.errors import DrfmError
    from drfm.evaluation.features_file import FeatureSet
    from drfm.evaluation.protocol import evaluate_features
    from drfm.utils.io import write_json_atomic
    from drfm.utils.seeding import environment_info

    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    if not names:
        raise DrfmError(f"--configs '{args.configs}': give at least one configuration name")
    configs = {name: load_config(name, [f"seed={args.seed}"]) for name in names}  # every name checked first
    out = check_output_folder(args.out, "--out")
    if out.exists():
        if not (out / MARKER).exists():
            raise DrfmError(f"{out}: exists and is not a drfm demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by drfm demo; replaced by the next demo run\n")
    started = time.perf_counter()
    world = out / "world"
    generate_demo_world(world, num_people=args.people, seed=args.seed)
    print(f"demo world: {args.people} people in {world} ({time.perf_counter() - started:.1f} s)")
    rows = []
    for name, config in configs.items():
        config["data"].update(dataset="mlr", root=str(world), cache_dir=str(out / "cache"))
        run_start = time.perf_counter()
        trainer = start_run(config, out / "runs" / name, progress=not args.quiet)
        trainer.fit()
        arrays = run_feature_arrays(out / "runs" / name, progress=not args.quiet)
        result = evaluate_features(FeatureSet(**arrays), protocol="single-shot", trials=10, seed=0)
        result.update(config=name, seconds=round(time.perf_counter() - run_start, 1))
        print(f"{name}: Rank-1 {result['rank1']:.1f}  mAP {result['mAP']:.1f}  ({result['seconds']} s)")
        rows.append(result)
    write_json_atomic(out / "results.json", {"rows": rows, "seed": args.seed, "people": args.people,
                                             "environment": environment_info()})
    print()
    print(f"{'method':12s} {'Rank-1':>14s} {'Rank-5':>7s} {'Rank-10':>7s} {'mAP':>6s} {'time':>7s}")
    for row in rows:
        print(f"{row['config']:12s} {row['rank1']:6.1f} +- {row['rank1_std']:4.1f} {row['rank5']:7.1f} "
              f"{row['rank10']:7.1f} {row['mAP']:6.1f} {row['seconds']:6.0f}s")
    print(f"\nsingle-shot cross-resolution protocol, 10 trials; total {time.perf_counter() - started:.0f} s; "
          f"results in {out / 'results.json'}")
    return 0
