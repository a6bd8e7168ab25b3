"""Epoch-0 pseudo-label quality of a configuration's clustering with and without colour histograms.

    python benchmarks/color_grid.py --root mlr-ilids --cache DIR --out color-ilids.json \
        [--config drfm-cpu] [--weights 0,0.7,1,1.4] [--stripes 4,6,8] [--bins 8x4x4,16x4x4,8x8x4] \
        [key=value ...]

Extracts the configuration's untrained features of the MLR training split once (as epoch 0 of
`drfm train` does), then clusters them with the configuration's labels.* settings (k1, k2, eps,
min_samples, mode, standardize, stripes) for every colour-histogram variant (bands x HSV bins) and
labels.color_weight, and reports pairwise precision / recall / F of the labels against the
training identities (development data only; never the test split). Prints one line per variant
and writes JSON with the configuration, versions and rows.
"""

from __future__ import annotations

import argparse
import itertools

from drfm.config import load_config
from drfm.data.registry import read_dataset
from drfm.data.transforms import test_transform
from drfm.data.views import build_views
from drfm.engine.extract import extract_dual_features
from drfm.labels.color import color_histograms
from drfm.labels.strategy import assign_pseudo_labels
from drfm.models.dual_model import DualResolutionModel
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="MLR dataset folder (drfm prepare mlr)")
    parser.add_argument("--cache", required=True, help="twin cache folder (shared with the runs)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--config", default="drfm-cpu")
    parser.add_argument("--weights", default="0,0.7,1,1.4", help="labels.color_weight values")
    parser.add_argument("--stripes", default="4,6,8", help="horizontal bands of the histograms")
    parser.add_argument("--bins", default="8x4x4,16x4x4,8x8x4", help="HSV levels per channel")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    inp, pre = config["input"], config["preprocess"]
    splits = read_dataset("mlr", args.root, seed=config["data"]["split_seed"])
    views = build_views(splits.train, splits, args.cache, sr_backend=pre["sr_backend"], factor=pre["factor"],
                        progress=False)
    seed_everything(config["seed"])
    model = DualResolutionModel.from_config(config).eval()
    stripe_count = config["labels"]["stripes"]
    hr, lr, *stripe_features = extract_dual_features(model, views, test_transform(inp["height"], inp["width"]),
                                                     progress=False, stripes=stripe_count)
    variants = list(itertools.product((int(s) for s in args.stripes.split(",")),
                                      (tuple(int(b) for b in text.split("x")) for text in args.bins.split(","))))
    histograms = {}  # (bands, bins) -> (N, C), read once for every weight
    rows = []
    for weight in (float(w) for w in args.weights.split(",")):
        for bands, bins in [(None, None)] if weight == 0 else variants:
            if bands is not None and (bands, bins) not in histograms:
                histograms[bands, bins] = color_histograms(views.source, stripes=bands, bins=bins)
            color = histograms.get((bands, bins))
            settings = {**config["labels"], "color_weight": weight}
            pseudo = assign_pseudo_labels(settings, hr, lr, views.origin, views.pids,
                                          stripes=tuple(stripe_features) or None, color=color)
            quality = pseudo.stats["label_quality"]
            rows.append({"color_weight": weight, "bands": bands, "bins": bins, "clusters": pseudo.num_clusters,
                         **quality})
            print(f"weight {weight:<4} bands {bands!s:<4} bins {bins!s:<12} clusters {pseudo.num_clusters:4d}  "
                  f"F {quality['f1']:.3f}  precision {quality['precision']:.3f}  recall {quality['recall']:.3f}",
                  flush=True)
    write_json_atomic(args.out, {"root": args.root, "config": config, "seed": config["seed"],
                                 "environment": environment_info(), "rows": rows})


if __name__ == "__main__":
    main()
