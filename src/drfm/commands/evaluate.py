"""`drfm evaluate`: CMC Rank-1/5/10, mAP and mINP of a features file (or of a trained run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from drfm.cli import non_negative_int, positive_int
from drfm.errors import DrfmError
from drfm.evaluation.features_file import FeatureSet, load_features
from drfm.evaluation.protocol import PROTOCOLS, evaluate_features
from drfm.utils.io import check_output_file, check_output_folder, write_json_atomic

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
    """Options of `drfm evaluate`."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", metavar="F.npz",
                        help="features file (query_/gallery_ feats, pids, camids), e.g. from `drfm extract`")
    source.add_argument("--run", dest="run_dir", metavar="RUN_DIR",
                        help="a trained run folder: extract and evaluate its test set")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="single-shot",
                        help="evaluation protocol (default: single-shot)")
    parser.add_argument("--trials", type=positive_int, default=10, help="single-shot gallery draws (default: 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the single-shot draws (default: 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument("--visualize", type=positive_int, metavar="N",
                        help="also draw the top-10 ranked lists of N test queries (seeded by --seed) "
                             "as ranked.html and ranked.png")
    parser.add_argument("--visualize-out", metavar="DIR",
                        help="folder for the pictures (default: RUN_DIR/visualize, or beside the features file)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (--run)")


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
    """Evaluate --features or --run, print the table, write --json and the --visualize pictures."""
    json_path = check_output_file(args.json, "--json") if args.json else None
    if json_path is not None and args.features is not None and json_path.resolve() == Path(args.features).resolve():
        raise DrfmError(f"--json {json_path}: is the --features file; refusing to overwrite it")
    if args.run_dir is not None:
        if not Path(args.run_dir).is_dir():
            problem = "is a file, not a run folder" if Path(args.run_dir).exists() else "no such run folder"
            raise DrfmError(f"--run {args.run_dir}: {problem}")
        check_output_file(Path(args.run_dir) / "eval.json", "--run")
    if args.visualize:
        out_dir = visualize_dir(args)
        check_output_folder(out_dir, "--visualize-out")
        for name in ("ranked.html", "ranked.png"):
            check_output_file(out_dir / name, "--visualize-out")
    if args.run_dir is not None:
        from drfm.engine.inference import evaluate_run, run_feature_arrays

        # Extracted once here when the pictures need them too; evaluate_run extracts otherwise.
        progress = not args.quiet
        features = FeatureSet(**run_feature_arrays(args.run_dir, progress)) if args.visualize else None
        result = evaluate_run(args.run_dir, protocol=args.protocol, trials=args.trials, seed=args.seed,
                              progress=progress, features=features)
    else:
        features = load_features(args.features)
        result = evaluate_features(features, args.protocol, args.trials, args.seed)
        result["features"] = str(Path(args.features))
    print(format_table(result))
    if json_path is not None:
        write_json_atomic(json_path, result)
        print(f"wrote {json_path}")
    if args.visualize:
        visualize(args, features)
    return 0


def visualize_dir(args: argparse.Namespace) -> Path:
    """The folder of the --visualize pictures: --visualize-out, else RUN_DIR/visualize or the
    features file's folder."""
    if args.visualize_out:
        return Path(args.visualize_out)
    return Path(args.run_dir) / "visualize" if args.run_dir is not None else Path(args.features).parent


def visualize(args: argparse.Namespace, features: FeatureSet) -> None:
    """Draw the ranked lists of --visualize N test queries of the features just evaluated."""
    from drfm.evaluation.visualize import visualize_features

    source = args.run_dir if args.run_dir is not None else args.features
    html_path, png_path = visualize_features(features, args.visualize, visualize_dir(args) / "ranked.html",
                                             seed=args.seed, protocol=args.protocol,
                                             title=f"drfm evaluate: {source}")
    print(f"wrote {html_path} and {png_path}")
