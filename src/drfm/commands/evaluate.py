"""`drfm evaluate`: CMC Rank-1/5/10, mAP and mINP of a features file (or of a trained run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from drfm.errors import DrfmError
from drfm.evaluation.features_file import FeatureSet, load_features
from drfm.evaluation.protocol import PROTOCOLS, evaluate_features
from drfm.utils.io import write_json_atomic

HELP = "evaluate query/gallery features: CMC Rank-1/5/10 (mean ± std over trials), mAP, mINP"

DESCRIPTION = """\
Rank every query against the gallery by cosine distance (ties: lower gallery index first).

single-shot (default, the cross-resolution protocol): each trial keeps one random gallery image
per identity (numpy default_rng(seed)); no same-camera filtering; the figures are mean ± std over
the trials. multi-shot (Market-1501): the whole gallery, gallery images of the query's identity
and camera are ignored; --trials and --seed do not apply.

Queries with no matching gallery image are excluded and counted. For a query whose P positives
sit at ranks r_1 < ... < r_P: AP = (1/P) sum_i i / r_i (mean precision at each positive, the
Market-1501 mAP); INP = P / r_P (inverse rank of the hardest positive, Ye et al. 2021 mINP).
All figures are percentages.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", metavar="F.npz",
                        help="features file (query_/gallery_ feats, pids, camids), e.g. from `drfm extract`")
    # dest is not "run": the command line stores each subcommand's function as args.run.
    source.add_argument("--run", dest="run_dir", metavar="RUN_DIR",
                        help="a trained run folder: extract and evaluate its test set")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="single-shot",
                        help="evaluation protocol (default: single-shot)")
    parser.add_argument("--trials", type=int, default=10, help="single-shot gallery draws (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the single-shot draws (default: 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument("--visualize", type=int, metavar="N",
                        help="also draw the top-10 ranked lists of N test queries (seeded by --seed) "
                             "as ranked.html and ranked.png")
    parser.add_argument("--visualize-out", metavar="DIR",
                        help="folder for the pictures (default: RUN_DIR/visualize, or beside the features file)")


def format_table(result: dict[str, Any]) -> str:
    """The results as a small text table: one line of context, then one metric per line."""
    if result["protocol"] == "single-shot":
        header = (f"single-shot, {result['trials']} trial(s), seed {result['seed']}: "
                  f"{result['num_gallery_per_trial']} of {result['num_gallery']} gallery images per trial")
    else:
        header = f"multi-shot: {result['num_gallery']} gallery images"
    lines = [f"{header}, {result['num_gallery_ids']} gallery ids, "
             f"{result['num_valid_query']} of {result['num_query']} queries valid"]
    rows = (("Rank-1", "rank1"), ("Rank-5", "rank5"), ("Rank-10", "rank10"), ("mAP", "mAP"), ("mINP", "mINP"))
    for label, key in rows:
        lines.append(f"  {label:<8}{result[key]:6.2f} ± {result[key + '_std']:.2f} %")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.trials < 1:
        raise DrfmError(f"--trials must be at least 1, got {args.trials}")
    if args.visualize is not None and args.visualize < 1:
        raise DrfmError(f"--visualize must be at least 1, got {args.visualize}")
    if args.run_dir is not None:
        from drfm.engine.inference import evaluate_run, run_feature_arrays

        # Extracted once here when the pictures need them too; evaluate_run extracts otherwise.
        features = FeatureSet(**run_feature_arrays(args.run_dir)) if args.visualize else None
        result = evaluate_run(args.run_dir, protocol=args.protocol, trials=args.trials, seed=args.seed,
                              features=features)
    else:
        features = load_features(args.features)
        result = evaluate_features(features, args.protocol, args.trials, args.seed)
        result["features"] = str(Path(args.features))
    print(format_table(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    if args.visualize:
        visualize(args, features)
    return 0


def visualize(args: argparse.Namespace, features: FeatureSet) -> None:
    """Draw the ranked lists of --visualize N test queries of the features just evaluated."""
    from drfm.evaluation.visualize import visualize_features

    default_dir = Path(args.run_dir) / "visualize" if args.run_dir is not None else Path(args.features).parent
    out_dir = Path(args.visualize_out) if args.visualize_out else default_dir
    source = args.run_dir if args.run_dir is not None else args.features
    html_path, png_path = visualize_features(features, args.visualize, out_dir / "ranked.html", seed=args.seed,
                                             protocol=args.protocol, title=f"drfm evaluate: {source}")
    print(f"wrote {html_path} and {png_path}")
