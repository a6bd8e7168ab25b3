"""Figure 6 (pseudo-label F-score per epoch) for the small real development sets.

    python benchmarks/make_dev_figures.py --work k1/ilids:MLR-iLIDS:final/ilids k1/3dpes:MLR-3DPeS --out docs

Each WORK folder is one written by benchmarks/mlr_table.py; its runs `drfm-s*`, `cc-s*` and, when
present, `drfm-cpg-s*` (the paper's CPG labelling with the CPU settings) and
`drfm-paper-clustering-s*` are drawn (mean over seeds, min-max band). An optional third field
names a work folder of an earlier preset, whose `drfm-s*` and `cc-s*` runs are drawn beside them
as "previous preset". `--curves` and `--previous-curves` replace these families by others, each
`LEGEND=PREFIX` (runs PREFIX-s<seed>) or `LEGEND=PREFIX@FOLDER` (runs FOLDER/runs/PREFIX-s<seed>
of another work folder, for a preset measured apart; `{name}` in FOLDER becomes the dataset's
lower-cased name without "MLR-"), and `--suffix` appends to every file name. Writes
OUT/fig6_<name><suffix>.png per folder.

    python benchmarks/make_dev_figures.py --work k1/ilids:MLR-iLIDS:final/ilids --suffix _finding14 \
        --curves "DRFM (drfm-cpu)=drfm-cal" "CC (cc-cpu)=cc-cal" "DRFM, finding 13=drfm" \
        --previous-curves "DRFM, CPG labels=drfm-cpg"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from drfm.engine.checkpoint import read_log
from drfm.evaluation.figures import plot_label_fscore

CURVES = (("DRFM (drfm-cpu)", "drfm"), ("DRFM, CPG labels", "drfm-cpg"), ("CC (cc-cpu)", "cc"),
          ("DRFM, paper clustering", "drfm-paper-clustering"))
PREVIOUS_CURVES = (("DRFM, previous preset", "drfm"), ("CC, previous preset", "cc"))


def family_logs(work: str, prefix: str) -> list[list[dict]]:
    """The per-epoch logs of the runs WORK/runs/PREFIX-s<seed>, in seed order."""
    return [read_log(run) for run in sorted((Path(work) / "runs").glob(f"{prefix}-s[0-9]*"))]


def curve(text: str) -> tuple[str, str]:
    """`LEGEND=PREFIX[@FOLDER]` -> (legend, prefix[@folder])."""
    legend, _, prefix = text.rpartition("=")
    if not legend or not prefix or prefix.startswith("@") or prefix.endswith("@"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected LEGEND=PREFIX or LEGEND=PREFIX@FOLDER")
    return legend, prefix


def curve_logs(work: str, prefix: str, name: str) -> list[list[dict]]:
    """The logs of one curve: PREFIX's runs in WORK, or in FOLDER for PREFIX@FOLDER."""
    prefix, _, folder = prefix.partition("@")
    return family_logs(folder.replace("{name}", name) if folder else work, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", nargs="+", required=True, metavar="DIR:TITLE[:PREVIOUS_DIR]",
                        help="a mlr_table.py work folder, the dataset's name for the title and, optionally, "
                             "the work folder of an earlier preset")
    parser.add_argument("--curves", nargs="+", type=curve, default=CURVES, metavar="LEGEND=PREFIX",
                        help="the run families of each work folder to draw")
    parser.add_argument("--previous-curves", nargs="+", type=curve, default=PREVIOUS_CURVES, metavar="LEGEND=PREFIX",
                        help="the run families of each earlier preset's work folder to draw")
    parser.add_argument("--suffix", default="", help="appended to every figure's file name")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    for item in args.work:
        folder, name, *previous = item.split(":")
        short = name.lower().replace("mlr-", "")
        groups = {label: curve_logs(folder, prefix, short) for label, prefix in args.curves}
        for label, prefix in args.previous_curves if previous else ():
            groups[label] = curve_logs(previous[0], prefix, short)
        out = Path(args.out) / f"fig6_{short}{args.suffix}.png"
        print(plot_label_fscore({k: v for k, v in groups.items() if v}, out,
                                title=f"{name}, CPU preset: pseudo-label F-score per epoch"))


if __name__ == "__main__":
    main()
