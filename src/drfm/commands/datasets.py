"""`drfm datasets`: list registered dataset readers, or summarise one dataset on disk."""

from __future__ import annotations

import argparse

from drfm.cli import non_negative_int, positive_int
from drfm.data.registry import dataset_names, read_dataset

HELP = "list dataset readers, or count images/ids/cameras (and LR images) of one dataset on disk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm datasets`."""
    parser.add_argument("--dataset", help="dataset name to read (omit to list names)")
    parser.add_argument("--root", help="dataset folder in its original release layout")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of random train/test splits")
    parser.add_argument(
        "--lr-height-threshold",
        type=positive_int,
        default=None,
        help="`folder` only: an image lower than this many pixels is LR (default 64)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the reader names, or the dataset's counts per split and how many images are LR."""
    if args.dataset is None:
        print("\n".join(dataset_names()))
        return 0
    options = {} if args.lr_height_threshold is None else {"lr_height_threshold": args.lr_height_threshold}
    splits = read_dataset(args.dataset, args.root or ".", seed=args.seed, **options)
    print(splits.summary())
    return 0
