"""`drfm prepare mlr|sr`: build derived datasets (MLR-<dataset>) and resolution caches (SLR/SHR)."""

from __future__ import annotations

import argparse
import importlib

HELP = "build MLR-<dataset> (mlr) or the SLR/SHR resolution cache of a dataset (sr)"

# sub-subcommand -> module in drfm.commands
_TARGETS = {"mlr": "prepare_mlr", "sr": "prepare_sr"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The targets of `drfm prepare` (mlr, sr), each with its own options."""
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for target, module_name in _TARGETS.items():
        module = importlib.import_module(f"drfm.commands.{module_name}")
        sub = targets.add_parser(target, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_target_command=module.run)


def run(args: argparse.Namespace) -> int:
    """Run the target named on the command line."""
    return args._target_command(args)
