"""`drfm prepare mlr`: build a cross-resolution (MLR) dataset folder from an original release."""

from __future__ import annotations

import argparse

from drfm.cli import non_negative_int, positive_int
from drfm.data.mlr import build_mlr, summary

HELP = (
    "build an MLR dataset (one camera, or a seeded half of each person's images for data without "
    "cameras, down-sampled by r in {2,3,4}) with a manifest, atomically"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm prepare mlr`."""
    parser.add_argument(
        "--dataset", required=True, help="source dataset reader (viper, market1501, cuhk03, threedpes, ilids, ...)"
    )
    parser.add_argument("--root", required=True, help="source dataset folder in its original release layout")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: new, empty, or an earlier build (replaced); never inside --root, "
        "never a folder holding other files",
    )
    parser.add_argument(
        "--lr-camera", type=int, default=None, help="camid (0-based) to down-sample (default: per dataset)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the train/test split, the LR half and each image's r"
    )
    parser.add_argument(
        "--lr-height-threshold",
        type=positive_int,
        default=None,
        help="an image lower than this many pixels is LR, nothing down-sampled: for `folder` (default 64) "
        "or, instead of the per-person half, for data without camera ids",
    )


def run(args: argparse.Namespace) -> int:
    """Build the dataset; print any housekeeping line (stale temporary folder removed, earlier build
    replaced), then a one-paragraph summary."""
    manifest = build_mlr(
        args.dataset,
        args.root,
        args.out,
        lr_camera=args.lr_camera,
        seed=args.seed,
        lr_height_threshold=args.lr_height_threshold,
        report=print,
    )
    print(f"{summary(manifest)} Written to {args.out}.")
    return 0
