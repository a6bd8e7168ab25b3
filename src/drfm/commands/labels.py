"""`drfm labels`: the pseudo-labels one model gives a dataset's training images, over a grid of labels.* settings.

Parses, loads the model and the data, extracts the features once and prints; the figures come
from `drfm.labels.diagnostics` (whose docstring says what each one means and which way is good).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drfm.config import config_names, load_config, validate_config
from drfm.config_schema import quote
from drfm.errors import DrfmError
from drfm.utils.io import check_output_file, write_json_atomic

if TYPE_CHECKING:
    from drfm.labels.diagnostics import GridPoint
    from drfm.models.dual_model import DualResolutionModel

HELP = "diagnose the pseudo-labelling step: clusters, CPG and label quality over a grid of labels.* settings"

DESCRIPTION = """\
Extract the training split's dual features once (E_h of every image's HR view, E_l of its LR view,
as training does at the start of an epoch; and the colour histograms when labels.color_weight > 0),
then run the labelling step for every point of the grid and print one row per point: #clusters,
DBSCAN outliers, N1c, T, #labelled LR, #ambiguous, cluster sizes (median, max, share of all images
in the largest), share of images labelled, separation margin (cosine to own vs nearest other
centroid, E_h space; higher is better), share of clustered images whose cluster mixes HR and LR
images (higher is better where people are seen at both resolutions), CPG agreement (labelled LR
images whose s_l and s_sh pick the same cluster; higher is better), and, when the training
identities are known, pairwise F-score of all labels, HR labels and LR labels. Every figure is
described in drfm/labels/diagnostics.py.

The model: --run RUN_DIR (its config.yaml and last checkpoint: the labels of its next epoch) or
--config NAME with --dataset and --root (that configuration's untrained model, seeded by its
`seed`: the labels of epoch 0). The twin cache is data.cache_dir, else RUN_DIR/../cache (--run)
or ./cache (--config): set data.cache_dir=DIR to share your runs' cache.

  drfm labels --config drfm-cpu --dataset mlr --root mlr-viper \\
      --grid labels.k1=10,20,30 --grid labels.eps=0.5,0.6 --grid labels.outliers=drop,singletons
  drfm labels --run runs/drfm-cpu --grid labels.t=0.5,0.7,0.9 --json labels.json
"""

# Overrides that would not reach a run's model (its checkpoint fixes the networks).
RUN_FIXED = ("method", "model.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm labels`."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="run_dir", metavar="RUN_DIR",
                        help="a run folder made by `drfm train`: its configuration and last checkpoint")
    source.add_argument("--config", help=f"an untrained configuration ({', '.join(config_names())}) or YAML path")
    parser.add_argument("--dataset", help="dataset reader name (default: the configuration's data.dataset)")
    parser.add_argument("--root", help="dataset folder (default: the configuration's data.root)")
    parser.add_argument("--grid", action="append", default=[], metavar="labels.KEY=V1,V2,...",
                        help="values of one labels.* key to try (repeatable: every combination is a row; "
                             "applied after the key=value overrides)")
    parser.add_argument("--device", help="torch device (default: the configuration's train.device)")
    parser.add_argument("--json", metavar="PATH", help="also write configuration, versions and rows to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="configuration overrides, e.g. labels.k1=20 train.device=cpu")


def parse_grid(texts: list[str]) -> dict[str, list[str]]:
    """{"labels.k1": ["6", "10"], ...} from --grid texts "labels.k1=6,10"; DrfmError (one line) for
    a text without '=', a key outside labels.* or a key given twice."""
    grid: dict[str, list[str]] = {}
    for text in texts:
        key, equals, values = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise DrfmError(f"--grid {quote(text)}: expected labels.KEY=VALUE1,VALUE2,...")
        if not key.startswith("labels."):
            raise DrfmError(f"--grid {quote(text)}: only labels.* keys can vary (the features are extracted "
                            f"once); set {quote(key)} as a key=value override")
        if key in grid:
            raise DrfmError(f"--grid {quote(key)}: given twice; list all its values in one --grid")
        grid[key] = [value.strip() for value in values.split(",")]
    return grid


def value_at(config: dict, dotted: str) -> Any:
    """config["labels"]["k1"] for "labels.k1"."""
    node: Any = config
    for name in dotted.split("."):
        node = node[name]
    return node


def load_configs(args: argparse.Namespace, grid: dict[str, list[str]]) -> tuple[dict, list[GridPoint]]:
    """(the configuration with the overrides and --dataset/--root, one GridPoint per grid point),
    every point loaded with its overrides, so each value is checked as `drfm train` checks it."""
    from drfm.engine.checkpoint import CONFIG_NAME
    from drfm.labels.diagnostics import GridPoint, grid_points

    if args.run_dir is not None:
        run_dir = Path(args.run_dir)
        if not run_dir.is_dir():
            problem = "is a file, not a run folder" if run_dir.exists() else "no such run folder"
            raise DrfmError(f"--run {run_dir}: {problem}")
        if not (run_dir / CONFIG_NAME).is_file():
            raise DrfmError(f"--run {run_dir}: not a run folder (no {CONFIG_NAME})")
        fixed = [text for text in args.overrides if text.split("=", 1)[0].strip().startswith(RUN_FIXED)]
        if fixed:
            raise DrfmError(f"override {quote(fixed[0])}: the run's checkpoint fixes method and model.*; "
                            "use --config to try another model")
        source = str(run_dir / CONFIG_NAME)
    else:
        source = args.config
    config = load_config(source, args.overrides)
    data = config["data"]
    data.update({k: v for k, v in (("dataset", args.dataset), ("root", args.root)) if v})
    if not data["dataset"] or not data["root"]:
        raise DrfmError("no dataset: pass --dataset NAME --root DIR (or set data.dataset, data.root)")
    validate_config(config)
    points = []
    for point in grid_points(grid):
        at_point = load_config(source, [*args.overrides, *(f"{k}={v}" for k, v in point.items())])
        points.append(GridPoint({k: value_at(at_point, k) for k in point}, at_point["labels"]))
    return config, points


def load_model(args: argparse.Namespace, config: dict) -> tuple[DualResolutionModel, dict]:
    """(model in eval mode on --device or train.device, its source for the report): the run's last
    checkpoint with --run, else the configuration's untrained model built after seeding with its
    `seed`, as the trainer builds its start."""
    device_name = args.device or config["train"]["device"]
    if args.run_dir is not None:
        from drfm.engine.inference import load_run

        _, model, state = load_run(args.run_dir, device_name)
        source = {"source": "run", "run": str(args.run_dir), "epochs_trained": int(state["epoch"])}
        return model, source
    from drfm.engine.extract import resolve_device
    from drfm.models.dual_model import DualResolutionModel
    from drfm.utils.seeding import seed_everything

    device = resolve_device(device_name)
    seed_everything(config["seed"])
    model = DualResolutionModel.from_config(config).to(device).eval()
    source = {"source": "untrained", "config": config["name"], "pretrained": config["model"]["pretrained"]}
    return model, source


def run(args: argparse.Namespace) -> int:
    """Check everything, load the model and the training split, extract once (once per
    labels.stripes value of the grid), diagnose every grid point, print the table and write --json."""
    import numpy as np

    from drfm.data.registry import read_dataset
    from drfm.data.transforms import test_transform
    from drfm.data.views import build_views
    from drfm.engine.checkpoint import twin_cache_dir
    from drfm.engine.extract import extract_dual_features
    from drfm.labels.color import calibrated_histograms, load_thumbnails
    from drfm.labels.strategy import check_label_settings
    from drfm.labels.diagnostics import diagnose_grid
    from drfm.utils.seeding import environment_info

    json_path = check_output_file(args.json, "--json") if args.json else None
    grid = parse_grid(args.grid)
    config, points = load_configs(args, grid)
    data, pre, inp, train = config["data"], config["preprocess"], config["input"], config["train"]
    splits = read_dataset(data["dataset"], data["root"], seed=data["split_seed"])
    splits.check_not_empty(("train",))
    for point in points:
        check_label_settings({**config, "labels": point.settings}, splits)
    if any(point.settings["oracle"] for point in points) and any(r.pid < 0 for r in splits.train):
        raise DrfmError("labels.oracle needs ground-truth ids for every training image")
    model, model_source = load_model(args, config)
    # the run's twin cache (as training used it), or ./cache for an untrained configuration
    cache = twin_cache_dir(data["cache_dir"], args.run_dir) if args.run_dir else Path(data["cache_dir"] or "cache")
    progress = not args.quiet
    views = build_views(splits.train, splits, cache, sr_backend=pre["sr_backend"], sr_weights=pre["sr_weights"],
                        factor=pre["factor"], use_twins=model.uses_twins, progress=progress)
    stripes: dict[int, tuple] = {}
    # One pass per labels.stripes count > 0 of the grid (each also gives hr and lr), one without otherwise.
    for count in sorted({point.settings["stripes"] for point in points} - {0}, reverse=True) or [0]:
        hr, lr, *parts = extract_dual_features(model, views, test_transform(inp["height"], inp["width"]),
                                               batch_size=train["extract_batch_size"],
                                               device=next(model.parameters()).device,
                                               num_workers=train["num_workers"], progress=progress,
                                               desc="extract", stripes=count)
        if count > 0:
            stripes[count] = tuple(parts)
    calibrations = {point.settings["color_calibration"] for point in points if point.settings["color_weight"] > 0}
    thumbnails = load_thumbnails(views.source, progress=progress) if calibrations else None
    colors = {calibration: calibrated_histograms(thumbnails, views.origin, calibration) for calibration in calibrations}
    rows = diagnose_grid(points, hr, lr, views.origin, views.pids, stripes, colors)
    identities = int(np.unique(views.pids).size) if (views.pids >= 0).all() else None
    dataset = {"name": splits.name, "root": str(splits.root), "train_images": len(views),
               "identities": identities, "cache_dir": str(cache)}
    print(header_line(dataset, model_source, rows[0]))
    print(format_table(rows, list(grid)))
    if json_path is not None:
        write_json_atomic(json_path, {
            "command": "labels", "dataset": dataset, "model": model_source, "config": config,
            "grid": {key: list(dict.fromkeys(row["settings"][key] for row in rows)) for key in grid},
            "seeds": {"seed": config["seed"], "split_seed": data["split_seed"]},
            "environment": environment_info(), "rows": rows})
        print(f"wrote {json_path}")
    return 0


def header_line(dataset: dict, model_source: dict, row: dict) -> str:
    """One line of context above the table: the data and the model."""
    ids = f", {dataset['identities']} identities" if dataset["identities"] is not None else ", identities unknown"
    if model_source["source"] == "run":
        model = f"run {model_source['run']} after {model_source['epochs_trained']} epoch(s)"
    else:
        model = f"untrained {model_source['config']}"
    return (f"{dataset['name']} {dataset['root']}: {row['N1']} HR + {row['N2']} LR training images{ids}; "
            f"model: {model}")


def _show(value: Any, spec: str = "") -> str:
    """A table cell: '-' for None, else `value` formatted by `spec`."""
    return "-" if value is None else format(value, spec)


def _setting(value: Any) -> str:
    """A setting as a configuration spells it: true/false for a bool, null for None."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def format_table(rows: list[dict], keys: list[str]) -> str:
    """The rows as a right-aligned text table: the varied keys, then the figures."""
    columns: list[tuple[str, Any]] = [(key.removeprefix("labels."), lambda r, k=key: _setting(r["settings"][k]))
                                      for key in keys]
    columns += [
        ("k1-used", lambda r: _show(r["k1"], "d")),
        ("k2-used", lambda r: _show(r["k2"], "d")),
        ("clusters", lambda r: str(r["num_clusters"])),
        ("unclustered", lambda r: str(r["num_outliers"])),
        ("N1c", lambda r: str(r["N1c"])),
        ("T", lambda r: _show(r["T"], ".2f")),
        ("LR-lab", lambda r: str(r["num_labelled_lr"])),
        ("ambig", lambda r: str(r["num_ambiguous"])),
        ("size-med", lambda r: _show(r["cluster_sizes"]["median"], ".1f")),
        ("size-max", lambda r: str(r["cluster_sizes"]["max"])),
        ("largest", lambda r: _show(r["cluster_sizes"]["largest_share"], ".1%")),
        ("labelled", lambda r: _show(r["labelled_fraction"], ".1%")),
        ("margin", lambda r: _show(r["separation"]["margin"], ".3f")),
        ("mixed", lambda r: _show(r["mixed_share"], ".1%")),
        ("agree", lambda r: _show(r["cpg_agreement"], ".2f")),
    ]
    if any(r["quality"] is not None for r in rows):
        for name, part in (("F", "all"), ("F-HR", "hr"), ("F-LR", "lr")):
            columns.append((name, lambda r, p=part: _show(r["quality"] and r["quality"][p]["f1"], ".3f")))
    columns.append(("sec", lambda r: f"{r['seconds']:.2f}"))
    cells = [[name for name, _ in columns]] + [[cell(r) for _, cell in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(width) for text, width in zip(line, widths)) for line in cells)
