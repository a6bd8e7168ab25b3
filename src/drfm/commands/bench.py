"""`drfm bench <name>`: reproducible speed/memory benchmarks; one sub-command per benchmark."""

from __future__ import annotations

import argparse

from drfm.utils.io import write_json_atomic

HELP = "run a benchmark (cluster: pseudo-label clustering on synthetic features)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    cluster = benches.add_parser(
        "cluster",
        help="time the k-reciprocal Jaccard + DBSCAN clustering against the exact-kNN floor",
        description="Seeded synthetic clustered unit features (about N/34.5 centres, 10%% outliers); "
        "reports seconds per stage, the exact-kNN floor, peak RSS and the number of clusters.",
    )
    cluster.add_argument("--n", type=int, required=True, help="number of feature rows")
    cluster.add_argument("--dim", type=int, default=2048, help="feature dimension (default 2048)")
    cluster.add_argument("--seed", type=int, default=0, help="seed of the synthetic features (default 0)")
    cluster.add_argument("--centers", type=int, help="number of cluster centres (default round(N / 34.5))")
    cluster.add_argument("--k1", type=int, default=30, help="k-reciprocal neighbourhood (default 30)")
    cluster.add_argument("--k2", type=int, default=6, help="query-expansion neighbourhood (default 6)")
    cluster.add_argument("--eps", type=float, default=0.6, help="DBSCAN radius (default 0.6)")
    cluster.add_argument("--min-samples", type=int, default=4, help="DBSCAN min_samples (default 4)")
    cluster.add_argument("--no-faiss", action="store_true", help="use the torch kNN even if faiss is installed")
    cluster.add_argument("--no-floor", action="store_true", help="skip timing the exact-kNN floor (large N)")
    cluster.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH (atomically)")
    cluster.set_defaults(bench_run=_run_cluster)


def run(args: argparse.Namespace) -> int:
    return int(args.bench_run(args))


def _run_cluster(args: argparse.Namespace) -> int:
    # Imported here so that building the CLI parser does not load torch and scikit-learn.
    from drfm.bench.cluster import format_report, run_cluster_bench

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
