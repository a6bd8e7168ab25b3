"""`drfm prepare mlr`: build a cross-resolution (MLR) dataset folder from an original release."""

from __future__ import annotations

import argparse

from drfm.data.mlr import build_mlr, summary

HELP = "build an MLR dataset (one camera down-sampled by r in {2,3,4}) with a manifest, atomically"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm prepare mlr`."""
    parser.add_argument("--dataset", required=True, help="source dataset reader (viper, market1501, cuhk03, ...)")
    parser.add_argument("--root", required=True, help="source dataset folder in its original release layout")
    parser.add_argument("--out", required=True, help="output folder (must not be inside --root)")
    parser.add_argument(
        "--lr-camera", type=int, default=None, help="camid (0-based) to down-sample (default: per dataset)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split and of each image's r")
    parser.add_argument(
        "--lr-height-threshold",
        type=int,
        default=64,
        help="for data without cameras: an image lower than this many pixels is LR (default 64)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-paragraph summary."""
    manifest = build_mlr(
        args.dataset,
        args.root,
        args.out,
        lr_camera=args.lr_camera,
        seed=args.seed,
        lr_height_threshold=args.lr_height_threshold,
    )
    print(f"{summary(manifest)} Written to {args.out}.")
    return 0
