"""`drfm prepare sr`: fill the resolution cache of a dataset's training images (SLR of HR images,
SHR of LR images), the twins training reads; test-time features make their views in memory."""

from __future__ import annotations

import argparse

from drfm.data.registry import read_dataset
from drfm.data.resolution import KINDS, prepare_resolution_views, resolution_sources
from drfm.data.sr_backends import get_sr_backend, sr_backend_names
from drfm.cli import non_negative_int, positive_int
from drfm.errors import DrfmError
from drfm.utils.io import check_output_folder

HELP = "cache SLR (HR down-sampled x4) and SHR (LR super-resolved x4) twins of the training images; resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm prepare sr`."""
    parser.add_argument("--dataset", required=True, help="dataset reader (mlr, caviar, folder, ...)")
    parser.add_argument("--root", required=True, help="dataset folder")
    parser.add_argument("--cache", required=True, help="resolution cache folder (created if missing)")
    parser.add_argument("--backend", default="bicubic", choices=sr_backend_names(),
                        help="super-resolution backend for SHR (default bicubic)")
    parser.add_argument("--weights", default=None, help="local weights folder of the SR backend")
    parser.add_argument("--device", default=None,
                        help="torch device of the swin2sr backend: cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--views", default="slr,shr", help="comma-separated views to make (default slr,shr)")
    parser.add_argument("--factor", type=positive_int, default=4,
                        help="down-sampling / super-resolution factor (default 4)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images per backend call (default 16)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the dataset's train/test split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _views(text: str) -> list[str]:
    views = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in views if v not in KINDS]
    if unknown or not views:
        raise DrfmError(f"--views {text}: expected a comma-separated subset of {','.join(KINDS)}")
    return list(dict.fromkeys(views))


def run(args: argparse.Namespace) -> int:
    """Compute the missing views and print how many images each view covers and where."""
    views = _views(args.views)
    check_output_folder(args.cache, "--cache")
    device = None
    if args.device is not None:
        from drfm.engine.extract import resolve_device

        device = str(resolve_device(args.device))
    splits = read_dataset(args.dataset, args.root, seed=args.seed)
    hr, lr = resolution_sources(splits)
    if "shr" in views and not lr:
        raise DrfmError(
            f"{args.root}: dataset '{args.dataset}' has no low-resolution image (no LR camera, no lr_paths); "
            "nothing to super-resolve, use --views slr"
        )
    # The SR backend is built (weights and device checked) before any view is computed.
    sr = get_sr_backend(args.backend, weights=args.weights, device=device) if "shr" in views else None
    for view, records in (("slr", hr), ("shr", lr)):
        if view not in views:
            continue
        done = prepare_resolution_views(
            records, view, args.cache, backend=sr if view == "shr" else "bicubic",
            factor=args.factor, batch_size=args.batch_size, progress=not args.no_progress,
        )
        method = args.backend if view == "shr" else "bicubic"
        source = "LR" if view == "shr" else "HR"
        where = f"{args.cache}/{view}/{method}"
        print(f"{view.upper()}: {len(done)} {source} images ({method} x{args.factor}) cached under {where}")
    return 0
