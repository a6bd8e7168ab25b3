"""`drfm datasets`: list registered dataset readers, or summarise one dataset on disk."""

from __future__ import annotations

import argparse

from drfm.data.registry import dataset_names, read_dataset

HELP = "list dataset readers, or count images/ids/cameras of one dataset on disk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="dataset name to read (omit to list names)")
    parser.add_argument("--root", help="dataset folder in its original release layout")
    parser.add_argument("--seed", type=int, default=0, help="seed of random train/test splits")


def run(args: argparse.Namespace) -> int:
    if args.dataset is None:
        print("\n".join(dataset_names()))
        return 0
    splits = read_dataset(args.dataset, args.root or ".", seed=args.seed)
    print(splits.summary())
    return 0
