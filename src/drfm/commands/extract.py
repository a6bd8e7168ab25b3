"""`drfm extract --run RUN_DIR --out F.npz`: a run's test-time features as a feature file."""

from __future__ import annotations

import argparse

HELP = "write a trained run's test-time (fusion) features of its test split to a .npz feature file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder made by `drfm train`")
    parser.add_argument("--out", required=True, help="feature file to write (.npz; see `drfm evaluate`)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from drfm.engine.inference import extract_run

    path = extract_run(args.run, args.out, progress=not args.quiet)
    print(f"features written: {path}")
    return 0
