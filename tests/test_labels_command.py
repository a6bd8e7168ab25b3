"""`drfm labels`: the pure diagnostics on hand-made features, then the command end to end on a tiny
generated world, from an untrained configuration and from a run folder, and its one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from drfm.cli import main
from drfm.config import load_config
from drfm.data.demo_world import generate_demo_world
from drfm.data.views import HR_ORIGIN, LR_ORIGIN
from drfm.labels.cpg import pairwise_precision_recall_f1
from drfm.labels.diagnostics import (GridPoint, cluster_size_stats, cpg_agreement, diagnose, diagnose_grid,
                                     grid_points, pairwise_quality, separation)
from drfm.labels.strategy import mixed_share

H, L = HR_ORIGIN, LR_ORIGIN
E = torch.eye(3)
TINY = ["train.device=cpu", "model.pretrained=false", "input.height=64", "input.width=32", "labels.k1=8"]
ROW_KEYS = {"settings", "k1", "k2", "num_clusters", "num_outliers", "N1", "N2", "N1c", "T", "num_labelled_lr",
            "num_ambiguous", "labelled_fraction", "cluster_sizes", "separation", "mixed_share", "cpg_agreement",
            "quality", "seconds"}


# ----------------------------------------------------------------------------- pure functions
def test_grid_points_are_the_cartesian_product_first_key_slowest():
    assert grid_points({}) == [{}]
    assert grid_points({"a": ["1", "2"], "b": ["x", "y", "z"]}) == [
        {"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"},
        {"a": "2", "b": "x"}, {"a": "2", "b": "y"}, {"a": "2", "b": "z"}]


# Six images: HR 0, 1 and LR 2 in cluster 0; HR 3 and LR 4 in cluster 1; LR 5 unlabelled (ambiguous).
ORIGIN = np.array([H, H, L, H, L, L])
LABELS = np.array([0, 0, 0, 1, 1, -1])
PIDS = np.array([0, 0, 1, 1, 1, 1])


def test_pairwise_quality_of_a_known_labelling_by_hand():
    quality = pairwise_quality(LABELS, PIDS, ORIGIN)
    # all: predicted pairs (0,1) (0,2) (1,2) (3,4), true among them (0,1) (3,4); true pairs 1 + C(4,2) = 7.
    assert quality["all"]["precision"] == pytest.approx(2 / 4)
    assert quality["all"]["recall"] == pytest.approx(2 / 7)
    assert quality["all"]["f1"] == pytest.approx(4 / 11)
    # hr: images 0, 1, 3 are labelled perfectly.
    assert quality["hr"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    # lr: pairs holding labelled LR image 2 or 4: predicted (0,2) (1,2) (3,4), true among them (3,4);
    # true pairs (2,3) (2,4) (2,5) (3,4) (4,5).
    assert quality["lr"]["precision"] == pytest.approx(1 / 3)
    assert quality["lr"]["recall"] == pytest.approx(1 / 5)
    assert quality["lr"]["f1"] == pytest.approx(1 / 4)


def test_all_pairs_quality_is_the_training_logs_figure():
    rng = np.random.default_rng(0)
    labels, pids, origin = rng.integers(-1, 6, 200), rng.integers(0, 9, 200), rng.integers(0, 2, 200)
    quality = pairwise_quality(labels, pids, origin)["all"]
    expected = pairwise_precision_recall_f1(torch.as_tensor(labels), torch.as_tensor(pids))
    assert (quality["precision"], quality["recall"], quality["f1"]) == pytest.approx(expected)


def test_cluster_sizes():
    assert cluster_size_stats(LABELS) == {"median": 2.5, "max": 3, "largest_share": 0.5, "singletons": 0}
    assert cluster_size_stats(np.array([4, 4, 7, -1])) == {"median": 1.5, "max": 2, "largest_share": 0.5,
                                                          "singletons": 1}
    assert cluster_size_stats(np.array([-1, -1])) == {"median": None, "max": 0, "largest_share": 0.0,
                                                      "singletons": 0}


def test_separation_leaves_the_image_out_of_its_centroid_and_skips_singletons():
    features = torch.stack([E[0], E[0], E[1], E[2], E[2], E[1]])
    result = separation(features, np.array([0, 0, 0, 1, 1, 2]))
    # cluster 0: the e1 images see e1 + e2 (cos 1/sqrt 2), the e2 image sees 2 e1 (cos 0); cluster 1: cos 1.
    # The singleton (image 5) is not averaged. Nearest other centroids: C0 = (2, 1, 0)/sqrt 5, C1 = e3,
    # C2 = e2: the e1 images 0, the e2 image 1 (C2), the e3 images 0.
    assert result["images"] == 5
    assert result["own"] == pytest.approx((math.sqrt(2) + 2) / 5)
    assert result["nearest_other"] == pytest.approx(1 / 5)
    assert result["margin"] == pytest.approx((math.sqrt(2) + 2) / 5 - 1 / 5)
    one = separation(features, np.array([0, 0, 0, -1, -1, -1]))
    assert one["images"] == 3 and one["nearest_other"] is None and one["margin"] is None
    assert separation(features, np.full(6, -1))["own"] is None


def test_mixed_share_counts_images_whose_cluster_holds_both_resolutions():
    # Cluster 0: HR, HR, LR (mixed, 3 images); cluster 1: HR, HR (HR only); cluster 2: one LR image
    # (a singleton, not counted); one unlabelled LR image. Mixed: 3 of the 5 images in clusters of two+.
    labels = np.array([0, 0, 0, 1, 1, 2, -1])
    origin = np.array([0, 0, 1, 0, 0, 1, 1])
    assert mixed_share(labels, origin) == pytest.approx(3 / 5)
    assert mixed_share(np.array([0, 1, -1]), np.array([0, 1, 1])) is None
    assert mixed_share(np.full(3, -1), np.zeros(3, dtype=int)) is None


def test_cpg_agreement_counts_labelled_lr_images_whose_resolutions_pick_the_same_cluster():
    # C_h = C_sl = (e1, e2). LR image 2: E_l and E_h(SHR) both near e1 (agree); LR image 4: E_l near
    # e1 but E_h(SHR) at e2 (disagree); LR image 5 is unlabelled and does not count.
    hr = torch.stack([E[0], E[0], E[0], E[1], E[1], E[2]])
    lr = torch.stack([E[0], E[0], E[0], E[1], E[0], E[2]])
    assert cpg_agreement(LABELS, 2, hr, lr, ORIGIN) == pytest.approx(0.5)
    assert cpg_agreement(np.array([0, 0, -1, 1, -1, -1]), 2, hr, lr, ORIGIN) is None


def test_two_well_separated_groups_are_labelled_perfectly():
    rng = np.random.default_rng(1)
    origin = np.array(([H] * 8 + [L] * 4) * 2)
    pids = np.repeat([0, 1], 12)
    directions = torch.nn.functional.normalize(torch.as_tensor(rng.normal(size=(2, 16)), dtype=torch.float32), dim=1)
    hr, lr = (torch.nn.functional.normalize(
        directions[pids] + 0.02 * torch.as_tensor(rng.normal(size=(24, 16)), dtype=torch.float32), dim=1)
        for _ in range(2))
    settings = load_config("drfm", ["labels.k1=8", "labels.k2=2", "labels.min_samples=2", "labels.t=1.0"])["labels"]
    row = diagnose(settings, hr, lr, origin, pids)
    assert row["num_clusters"] == 2 and row["N1"] + row["N2"] == 24 and row["N1c"] == 16
    assert row["num_labelled_lr"] == 8 and row["num_ambiguous"] == 0 and row["labelled_fraction"] == 1.0
    assert all(row["quality"][part]["f1"] == 1.0 for part in ("all", "hr", "lr"))
    assert row["cpg_agreement"] == 1.0
    assert row["separation"]["margin"] > 0.5 and row["separation"]["images"] == 24
    assert row["cluster_sizes"] == {"median": 12.0, "max": 12, "largest_share": 0.5, "singletons": 0}
    unknown = diagnose(settings, hr, lr, origin, np.full(24, -1))
    assert unknown["quality"] is None and unknown["num_clusters"] == 2
    rows = diagnose_grid([GridPoint({"labels.t": t}, {**settings, "t": t}) for t in (0.5, 1.0)], hr, lr, origin)
    assert [r["settings"] for r in rows] == [{"labels.t": 0.5}, {"labels.t": 1.0}]
    assert [r["num_labelled_lr"] for r in rows] == [4, 8] and rows[0]["T"] == 0.5


# ----------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A tiny world (6 training people x 3 cameras x 2 images: 24 HR + 12 LR) and a 0-epoch run of it."""
    root = tmp_path_factory.mktemp("labels")
    generate_demo_world(root / "world", num_people=12, num_cameras=3, images_per_camera=2, seed=3)
    assert main(["train", "--config", "drfm-demo", "--dataset", "mlr", "--root", str(root / "world"),
                 "--out", str(root / "run"), "--quiet", *TINY, "train.epochs=0"]) == 0
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drfm: error: "), err
    return err[0]


def config_args(world: Path, *extra: str) -> list[str]:
    return ["labels", "--config", "drfm-demo", "--dataset", "mlr", "--root", str(world / "world"), "--quiet",
            *extra, *TINY, f"data.cache_dir={world / 'cache'}"]


def test_labels_of_an_untrained_configuration_and_of_a_run(world: Path, tmp_path: Path, capsys):
    out = tmp_path / "grid.json"
    assert main(config_args(world, "--grid", "labels.eps=0.6,0.9", "--grid", "labels.outliers=drop,singletons",
                            "--grid", "labels.k1=6,8,10", "--json", str(out))) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("mlr-demo") and "24 HR + 12 LR training images, 6 identities" in printed[0]
    assert printed[1].split()[:6] == ["eps", "outliers", "k1", "k1-used", "k2-used", "clusters"]
    assert len(printed) == 2 + 12 + 1
    result = json.loads(out.read_text())
    assert {"config", "seeds", "environment", "dataset", "model", "grid", "rows"} <= set(result)
    assert result["model"]["source"] == "untrained" and result["dataset"]["train_images"] == 36
    assert result["grid"] == {"labels.eps": [0.6, 0.9], "labels.outliers": ["drop", "singletons"],
                              "labels.k1": [6, 8, 10]}
    rows = result["rows"]
    assert len(rows) == 2 * 2 * 3 and all(set(row) == ROW_KEYS for row in rows)
    assert rows[1]["settings"] == {"labels.eps": 0.6, "labels.outliers": "drop", "labels.k1": 8}
    for row in rows:
        assert row["k1"] == row["settings"]["labels.k1"] and row["k2"] == 2  # drfm-demo's labels.k2
        assert row["N1"] + row["N2"] == 36 and row["N1"] == 24
        assert row["num_labelled_lr"] + row["num_ambiguous"] == row["N2"]
        assert set(row["quality"]) == {"all", "hr", "lr"}
        if row["settings"]["labels.outliers"] == "singletons":
            assert row["N1c"] == row["N1"]

    run_out = tmp_path / "run.json"
    assert main(["labels", "--run", str(world / "run"), "--quiet", "--grid", "labels.t=0.7,1.0",
                 "--json", str(run_out)]) == 0
    run_result = json.loads(run_out.read_text())
    assert run_result["model"] == {"source": "run", "run": str(world / "run"), "epochs_trained": 0}
    assert [row["settings"] for row in run_result["rows"]] == [{"labels.t": 0.7}, {"labels.t": 1.0}]
    # The run's untrained start is the configuration's untrained model (same seed): same labels.
    same = {k: v for k, v in run_result["rows"][0].items() if k not in ("settings", "seconds")}
    assert same == {k: v for k, v in rows[1].items() if k not in ("settings", "seconds")}


@pytest.mark.parametrize("case", ["unknown grid key", "grid key outside labels", "bad grid value", "bad combination",
                                  "missing run", "run and config", "model override of a run"])
def test_one_line_errors_and_no_json(world: Path, tmp_path: Path, capsys, case):
    out = tmp_path / "x.json"
    run = ["labels", "--run", str(world / "run"), "--json", str(out)]
    args, words = {
        "unknown grid key": (config_args(world, "--grid", "labels.nope=1,2", "--json", str(out)),
                             "unknown configuration key 'labels.nope'"),
        "grid key outside labels": (config_args(world, "--grid", "train.lr=0.1,0.2", "--json", str(out)),
                                    "only labels.* keys can vary"),
        "bad grid value": (config_args(world, "--grid", "labels.eps=0.5,2", "--json", str(out)),
                           "labels.eps=2: expected a number in (0, 1)"),
        "bad combination": (config_args(world, "--grid", "labels.k2=2,9", "--json", str(out)),
                            "labels.k2=9 must be at most labels.k1=8"),
        "missing run": (["labels", "--run", str(tmp_path / "nowhere"), "--json", str(out)], "no such run folder"),
        "run and config": (run + ["--config", "drfm-demo"], "not allowed with argument"),
        "model override of a run": (run + ["model.backbone=resnet18"], "fixes method and model.*"),
    }[case]
    assert main(args) == 2
    assert words in one_error_line(capsys)
    assert not out.exists()


def test_color_weight_is_a_grid_key_and_zero_reads_no_image_histograms(world: Path, tmp_path: Path, capsys,
                                                                     monkeypatch):
    out = tmp_path / "color.json"
    assert main(config_args(world, "--grid", "labels.color_weight=0,1", "--json", str(out))) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["settings"] for row in rows] == [{"labels.color_weight": 0.0}, {"labels.color_weight": 1.0}]
    import drfm.labels.color as color

    def no_histograms(*args, **kwargs):
        raise AssertionError("colour histograms computed with labels.color_weight=0")

    monkeypatch.setattr(color, "load_thumbnails", no_histograms)
    assert main(config_args(world, "--json", str(tmp_path / "none.json"), "labels.color_weight=0")) == 0


def test_color_calibration_is_a_grid_key_and_the_images_are_read_once(world: Path, tmp_path: Path, monkeypatch):
    import drfm.labels.color as color

    reads = []
    original = color.load_thumbnails

    def counted(*args, **kwargs):
        reads.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(color, "load_thumbnails", counted)
    out = tmp_path / "calibration.json"
    assert main(config_args(world, "--grid", "labels.color_calibration=none,resolution,resolution_saturation",
                            "--json", str(out), "labels.color_weight=1")) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["settings"] for row in rows] == [{"labels.color_calibration": value}
                                                 for value in ("none", "resolution", "resolution_saturation")]
    assert len(reads) == 1 and all(row["quality"]["all"]["f1"] > 0 for row in rows)


def test_k1_candidates_report_the_k1_each_row_used(world: Path, tmp_path: Path, capsys):
    out = tmp_path / "scan.json"
    assert main(config_args(world, "--grid", "labels.eps=0.5,0.6", "--json", str(out),
                            "labels.k1_candidates=[3, 6, 8, 12]")) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 and all(row["k1"] in (6, 8) for row in rows)  # an interior candidate
    assert [line.split()[1] for line in printed[2:4]] == [str(row["k1"]) for row in rows]


def test_k2_ratio_is_a_grid_key_and_rows_report_the_k2_used(world: Path, tmp_path: Path, capsys):
    out = tmp_path / "ratio.json"
    assert main(config_args(world, "--grid", "labels.k2_ratio=null,1.0", "--json", str(out), "labels.k2=1")) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = json.loads(out.read_text())["rows"]
    assert [row["settings"]["labels.k2_ratio"] for row in rows] == [None, 1.0]
    assert [(row["k1"], row["k2"]) for row in rows] == [(8, 1), (8, 8)]  # TINY's k1 8; 1.0 * k1: k2 = k1
    assert [line.split()[:3] for line in printed[2:4]] == [["null", "8", "1"], ["1.0", "8", "8"]]
