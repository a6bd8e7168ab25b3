"""Figure helpers: positive-pair distances split by resolution; PNGs are written."""

import json
from pathlib import Path

import numpy as np
import pytest

from drfm.engine.checkpoint import read_log
from drfm.evaluation.figures import plot_label_fscore, plot_pair_distance_histograms, positive_pair_distances


def test_positive_pairs_are_split_by_resolution_by_hand():
    features = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8], [1, 0]], dtype=float)
    pids = np.array([7, 7, 7, 9, 9])
    is_lr = np.array([False, True, False, False, True])
    same, cross = positive_pair_distances(features, pids, is_lr)
    # person 7: (0,2) same HR -> 0; (0,1), (1,2) cross -> 1, 1. person 9: (3,4) cross -> 1 - 0.6.
    assert sorted(same.tolist()) == [0.0]
    assert sorted(cross.tolist()) == pytest.approx([0.4, 1.0, 1.0])


def test_figures_are_written(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps({"epoch": e, "label_quality": {"f1": 0.1 * e}}) + "\n"
                                           for e in range(3)))
    png = plot_label_fscore({"DRFM": [read_log(run)]}, tmp_path / "f6.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = plot_pair_distance_histograms({"x": (np.array([0.1, 0.2]), np.array([0.5]))}, tmp_path / "f7.png")
    assert png.stat().st_size > 1000
