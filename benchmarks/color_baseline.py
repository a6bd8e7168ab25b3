"""A hand-crafted baseline without any learning: the stripe colour histograms of drfm/labels/color.py
as test features of a dataset's query and gallery images.

    python benchmarks/color_baseline.py --dataset mlr --root mlr-ilids --out color-ilids.npz
    drfm evaluate --features color-ilids.npz --json color-ilids.json

Writes a features file (the format `drfm extract` writes, with the image paths), so `drfm
evaluate` scores it with the same protocol as any run: a row to put beside the learned ones.
"""

from __future__ import annotations

import argparse

import numpy as np

from drfm.data.registry import read_dataset
from drfm.evaluation.features_file import save_features
from drfm.labels.color import color_histograms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset reader name (e.g. mlr)")
    parser.add_argument("--root", required=True, help="dataset folder")
    parser.add_argument("--out", required=True, help="features file to write (.npz)")
    parser.add_argument("--split-seed", type=int, default=0, help="the reader's split seed (data.split_seed)")
    args = parser.parse_args()
    splits = read_dataset(args.dataset, args.root, seed=args.split_seed)
    splits.check_not_empty(("query", "gallery"))
    sides = {}
    for side in ("query", "gallery"):
        records = getattr(splits, side)
        sides[side] = (color_histograms([r.path for r in records], progress=True).numpy(),
                       np.array([r.pid for r in records]), np.array([r.camid for r in records]),
                       np.array([str(r.path) for r in records]))
    (qf, qp, qc, qpaths), (gf, gp, gc, gpaths) = sides["query"], sides["gallery"]
    path = save_features(args.out, qf, qp, qc, gf, gp, gc, query_paths=qpaths, gallery_paths=gpaths)
    print(f"wrote {path}: {len(qf)} query and {len(gf)} gallery colour histograms ({qf.shape[1]} values each)")


if __name__ == "__main__":
    main()
