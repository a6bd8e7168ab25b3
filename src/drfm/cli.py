"""The `drfm` command: a thin layer over the library, one module per subcommand in drfm.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from drfm import __version__
from drfm.errors import DrfmError

# (subcommand, module in drfm.commands); each module defines HELP, add_arguments(parser), run(args).
SUBCOMMANDS = (
    ("demo", "demo"),
    ("prepare", "prepare"),
    ("train", "train"),
    ("extract", "extract"),
    ("evaluate", "evaluate"),
    ("bench", "bench"),
    ("datasets", "datasets"),
    ("search", "search"),
    ("export", "export"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and its one-line help."""
    parser = argparse.ArgumentParser(
        prog="drfm",
        description="Unsupervised cross-resolution person re-identification (DRFM, ACM MM 2024).",
    )
    parser.add_argument("--version", action="version", version=f"drfm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS:
        module = importlib.import_module(f"drfm.commands.{module_name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, turn a DrfmError into one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DrfmError as exc:
        print(f"drfm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drfm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
