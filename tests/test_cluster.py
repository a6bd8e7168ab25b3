"""Pseudo-labels from cluster_features, and the `drfm bench cluster` benchmark."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from drfm.bench.cluster import STAGES, format_report, run_cluster_bench, synthetic_features
from drfm.commands import bench as bench_command
from drfm.errors import DrfmError
from drfm.labels.cluster import cluster_features


def tight_groups_and_loners() -> torch.Tensor:
    """Three groups of 5 nearly identical unit rows along e0, e1, e2, and two loners along e3, e4."""
    generator = torch.Generator().manual_seed(0)
    directions = torch.eye(8)[[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 4]]
    x = directions + 1e-3 * torch.randn(directions.shape, generator=generator)
    return x / x.norm(dim=1, keepdim=True)


def test_tight_groups_become_clusters_and_loners_outliers():
    # k1 = 5: each group is its own reciprocal set, so its encodings (and their query expansions)
    # coincide and the in-group distance is ~0. A loner's reciprocal set is itself; with k2 = 2
    # it is averaged with its nearest row's encoding: half its own column plus either the other
    # loner's column or a group's uniform row, at distance 1 - 0.5 / 1.5 = 2/3 > eps from a group.
    timings: dict[str, float] = {}
    labels = cluster_features(tight_groups_and_loners(), k1=5, k2=2, eps=0.6, min_samples=3, timings=timings)
    assert labels.dtype == np.int64 and labels.shape == (17,)
    assert labels[15] == labels[16] == -1
    groups = labels[:15].reshape(3, 5)
    assert (groups == groups[:, :1]).all() and sorted(groups[:, 0].tolist()) == [0, 1, 2]
    assert set(timings) == set(STAGES) and all(seconds >= 0.0 for seconds in timings.values())


def test_planted_clusters_are_recovered():
    features, planted = synthetic_features(700, dim=64, centers=20, seed=4)
    labels = cluster_features(features, faiss_ok=False)
    members = planted >= 0
    assert adjusted_rand_score(planted[members], labels[members]) > 0.95
    # In 64 dimensions some uniform outliers fall near a cluster and join it as border points.
    assert (labels[~members] == -1).mean() > 0.5


@pytest.mark.parametrize("options, message", [({"eps": 1.0}, "eps"), ({"eps": 0.0}, "eps"),
                                              ({"min_samples": 0}, "min_samples")])
def test_cluster_features_rejects_bad_options(options, message):
    with pytest.raises(DrfmError, match=message):
        cluster_features(tight_groups_and_loners(), k1=5, k2=2, **options)


def test_synthetic_features_are_seeded_unit_rows_with_ten_percent_outliers():
    features, planted = synthetic_features(3000, dim=16, seed=1)
    again, planted_again = synthetic_features(3000, dim=16, seed=1)
    other, _ = synthetic_features(3000, dim=16, seed=2)
    assert features.dtype == torch.float32 and features.shape == (3000, 16)
    assert torch.equal(features, again) and np.array_equal(planted, planted_again)
    assert not torch.equal(features, other)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(3000))
    assert planted.max() + 1 == round(3000 / 34.5)
    assert 0.08 < (planted == -1).mean() < 0.12
    with pytest.raises(DrfmError, match="^n and dim: expected positive integers"):
        synthetic_features(0)


def test_bench_cluster_command_prints_a_table_and_writes_the_json(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    path = tmp_path / "out" / "cluster.json"
    args = parser.parse_args(["cluster", "--n", "500", "--dim", "64", "--no-faiss", "--json", str(path)])
    assert bench_command.run(args) == 0
    report = json.loads(path.read_text())
    assert {"n", "total_s", "knn_floor_s", "peak_rss_gib", "n_clusters"} <= set(report)
    assert report["n"] == 500 and report["dim"] == 64 and report["knn_backend"] == "torch"
    assert report["n_clusters"] == report["centers"] == 14 and report["peak_rss_gib"] > 0.0
    assert set(report["stages"]) == set(STAGES)
    # every figure is rounded to 1 ms: the stages' sum may exceed the total by half a ms per figure
    assert report["total_s"] >= sum(report["stages"].values()) - 0.0005 * (len(STAGES) + 1)
    assert [p.name for p in path.parent.iterdir()] == ["cluster.json"]
    printed = capsys.readouterr().out
    rows = {line.rsplit(maxsplit=1)[0].strip(): line.split()[-1] for line in printed.splitlines()}
    assert rows["clusters"] == str(report["n_clusters"]) and rows["exact-kNN floor s"] == str(report["knn_floor_s"])


def test_bench_without_floor_reports_every_stage():
    report = run_cluster_bench(200, dim=8, centers=5, k1=10, k2=3, faiss_ok=False, floor=False)
    table = format_report(report)
    assert report["centers"] == 5 and report["k1"] == 10
    assert report["knn_floor_s"] is None and report["total_over_floor"] is None
    for stage in STAGES:
        assert f"  {stage} s" in table
