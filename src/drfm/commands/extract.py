"""`drfm extract --run RUN_DIR --out F.npz`: a run's test-time features as a feature file."""

from __future__ import annotations

import argparse

from drfm.errors import DrfmError
from drfm.utils.io import check_output_file

HELP = "write a trained run's test-time (fusion) features of its test split to a .npz feature file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm extract`."""
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder made by `drfm train`")
    parser.add_argument("--out", required=True, metavar="F.npz",
                        help="feature file to write (.npz; see `drfm evaluate`)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Extract the run's query and gallery features and write them to --out atomically."""
    from drfm.engine.inference import extract_run

    out = check_output_file(args.out, "--out")
    if out.suffix != ".npz":
        raise DrfmError(f"--out {out}: a features file must end in .npz")
    path = extract_run(args.run, out, progress=not args.quiet)
    print(f"features written: {path}")
    return 0
