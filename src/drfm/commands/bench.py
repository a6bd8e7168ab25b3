"""`drfm bench <name>`: reproducible speed/memory benchmarks; one sub-command per benchmark."""

from __future__ import annotations

import argparse

from drfm.cli import non_negative_int, positive_int
from drfm.utils.io import check_output_file, write_json_atomic

HELP = "run a benchmark (cluster: pseudo-label clustering on synthetic features; train: the stages of an epoch)"


def jaccard_eps(text: str) -> float:
    """An argparse type: a DBSCAN radius on the Jaccard distance, 0 < eps < 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 < eps < 1 for a Jaccard distance, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmarks of `drfm bench` and their options."""
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    cluster = benches.add_parser(
        "cluster",
        help="time the k-reciprocal Jaccard + DBSCAN clustering against the exact-kNN floor",
        description="Seeded synthetic clustered unit features (about N/34.5 centres, 10%% outliers); "
        "reports seconds per stage, the exact-kNN floor, peak RSS and the number of clusters.",
    )
    cluster.add_argument("--n", type=positive_int, required=True, help="number of feature rows")
    cluster.add_argument("--dim", type=positive_int, default=2048, help="feature dimension (default 2048)")
    cluster.add_argument("--seed", type=non_negative_int, default=0, help="seed of the synthetic features (default 0)")
    cluster.add_argument("--centers", type=positive_int, help="number of cluster centres (default round(N / 34.5))")
    cluster.add_argument("--k1", type=positive_int, default=30, help="k-reciprocal neighbourhood (default 30)")
    cluster.add_argument("--k2", type=positive_int, default=6, help="query-expansion neighbourhood (default 6)")
    cluster.add_argument("--eps", type=jaccard_eps, default=0.6, help="DBSCAN radius, 0 < eps < 1 (default 0.6)")
    cluster.add_argument("--min-samples", type=positive_int, default=4, help="DBSCAN min_samples (default 4)")
    cluster.add_argument("--no-faiss", action="store_true", help="use the torch kNN even if faiss is installed")
    cluster.add_argument("--no-floor", action="store_true", help="skip timing the exact-kNN floor (large N)")
    cluster.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH (atomically)")
    cluster.set_defaults(_bench_command=_run_cluster)
    train = benches.add_parser(
        "train",
        help="time the stages of a training epoch (extract, cluster, CPG, memories, step) in images/s",
        description="One epoch's stages through the real trainer, on --dataset/--root or a seeded demo "
        "world in a temporary folder; also the step's cost over the two encoders' own forward+backward "
        "on the same batches.",
    )
    train.add_argument("--config", default="drfm-cpu", help="configuration name or YAML path (default drfm-cpu)")
    train.add_argument("--dataset", help="dataset reader name (default: a generated demo world)")
    train.add_argument("--root", help="dataset folder")
    train.add_argument("--people", type=positive_int, default=60, help="people of the demo world (default 60)")
    train.add_argument("--steps", type=positive_int, default=5, help="timed training steps (default 5)")
    train.add_argument("--warmup", type=non_negative_int, default=1, help="untimed steps first (default 1)")
    train.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH (atomically)")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    train.set_defaults(_bench_command=_run_train)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark named on the command line."""
    return int(args._bench_command(args))


def _run_cluster(args: argparse.Namespace) -> int:
    # Imported here so that building the CLI parser does not load torch and scikit-learn.
    from drfm.bench.cluster import format_report, run_cluster_bench

    if args.json:
        check_output_file(args.json, "--json")
    report = run_cluster_bench(
        args.n,
        dim=args.dim,
        seed=args.seed,
        centers=args.centers,
        k1=args.k1,
        k2=args.k2,
        eps=args.eps,
        min_samples=args.min_samples,
        faiss_ok=not args.no_faiss,
        floor=not args.no_floor,
    )
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report)
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from drfm.bench.train import format_report, run_train_bench
    from drfm.config import load_config
    from drfm.errors import DrfmError

    if args.json:
        check_output_file(args.json, "--json")
    if bool(args.dataset) != bool(args.root):
        raise DrfmError("bench train: pass --dataset and --root together (or neither for a demo world)")
    config = load_config(args.config, args.overrides)
    if args.dataset:
        config["data"].update(dataset=args.dataset, root=args.root)
    report = run_train_bench(config, steps=args.steps, warmup=args.warmup, people=args.people)
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report)
    return 0
