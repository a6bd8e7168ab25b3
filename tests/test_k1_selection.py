"""Choosing k1 from the data (drfm.labels.k1_selection, labels.k1_candidates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drfm.config import load_config
from drfm.labels import jaccard as jaccard_module
from drfm.labels import knn as knn_module
from drfm.labels import strategy as strategy_module
from drfm.labels.k1_selection import labelling_agreement, most_stable
from drfm.labels.strategy import adapted_k2, cluster_with_settings, label_quality


def test_agreement_is_the_pairwise_f_score_with_left_out_images_alone():
    # first pairs {01, 23}; second [0, 0, 0, -1] pairs {01, 02, 12} (image 3 alone): one pair in
    # common, P = 1/2, R = 1/3, F = 2 * (1/6) / (5/6) = 0.4, either way round.
    first, second = np.array([0, 0, 1, 1]), np.array([0, 0, 0, -1])
    assert labelling_agreement(first, second) == pytest.approx(0.4)
    assert labelling_agreement(second, first) == pytest.approx(0.4)
    assert labelling_agreement(first, np.array([5, 5, 2, 2])) == 1.0
    assert labelling_agreement(np.array([-1, -1]), np.array([-1, -1])) == 0.0  # no pairs at all


def test_the_interior_candidate_agreeing_most_with_its_neighbours_wins():
    labellings = {2: [0, 0, 1, 1, 2, 2], 4: [0, 0, 0, 1, 1, 1], 6: [0, 0, 0, 1, 1, 1], 8: [0, 0, 0, 0, 0, 0]}
    # agreements: (2, 4) = 4/9 (2 common of 3 and 6 pairs), (4, 6) = 1, (6, 8) = 4/7 (6 of 6 and 15);
    # stability of 4 = (4/9 + 1) / 2 = 0.722, of 6 = (1 + 4/7) / 2 = 0.786: 6 is chosen.
    calls = []

    def cluster(k1: int) -> np.ndarray:
        calls.append(k1)
        return np.array(labellings[k1])

    k1, labels, stability = most_stable([2, 4, 6, 8], cluster)
    assert k1 == 6 and labels.tolist() == labellings[6] and calls == [2, 4, 6, 8]
    assert stability == pytest.approx([(4 / 9 + 1) / 2, (1 + 4 / 7) / 2])
    for bad in ([2, 4], [4, 2, 6], [2, 2, 4]):
        with pytest.raises(ValueError, match="ascending"):
            most_stable(bad, cluster)


def test_candidates_recover_groups_a_small_fixed_k1_splits():
    # Six groups of 16 noisy copies: k1 = 6 fragments them (F < 0.1); the scan picks a k1 near the
    # group size and clusters as that k1 alone does.
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 16)
    features = F.normalize(torch.tensor(np.eye(32)[ids] + 0.2 * rng.standard_normal((len(ids), 32)),
                                        dtype=torch.float32), dim=1)
    settings = load_config("drfm", [])["labels"]
    settings.update(k2=1, eps=0.5, min_samples=2)
    fixed, _, k1 = cluster_with_settings(features, {**settings, "k1": 6})
    assert k1 == 6 and label_quality(fixed, ids)["f1"] < 0.1
    chosen, _, k1 = cluster_with_settings(features, {**settings, "k1": 6, "k1_candidates": [3, 6, 12, 18, 24, 30]})
    assert k1 in (12, 18, 24) and label_quality(chosen, ids)["f1"] > 0.6
    assert chosen.tolist() == cluster_with_settings(features, {**settings, "k1": k1})[0].tolist()
    # Candidates above the number of images are skipped; fewer than three left: labels.k1.
    few = features[:20]
    _, _, k1 = cluster_with_settings(few, {**settings, "k1": 6, "k1_candidates": [3, 6, 12, 24, 30]})
    assert k1 == 6
    _, _, k1 = cluster_with_settings(few[:10], {**settings, "k1": 4, "k1_candidates": [3, 6, 12]})
    assert k1 == 4


def test_a_scan_searches_the_neighbours_once_at_its_largest_k1(monkeypatch):
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(5), 12)
    features = F.normalize(torch.tensor(np.eye(16)[ids] + 0.3 * rng.standard_normal((len(ids), 16)),
                                        dtype=torch.float32), dim=1)
    settings = {**load_config("drfm", [])["labels"], "k2": 2, "eps": 0.5, "min_samples": 2,
                "k1_candidates": [4, 8, 12, 16]}
    searches = []
    real_knn = knn_module.knn

    def counting_knn(rows: torch.Tensor, k: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        searches.append(k)
        return real_knn(rows, k, **kwargs)

    monkeypatch.setattr(strategy_module, "knn", counting_knn)
    monkeypatch.setattr(jaccard_module, "knn", counting_knn)
    timings: dict = {}
    labels, _, k1 = cluster_with_settings(features, settings, timings)
    assert searches == [16] and timings["knn"] > 0
    # Each candidate clusters as a search at that k1 alone would.
    for candidate in settings["k1_candidates"]:
        searches.clear()
        alone, _, _ = cluster_with_settings(features, {**settings, "k1": candidate, "k1_candidates": []})
        assert searches == [candidate]
        if candidate == k1:
            assert alone.tolist() == labels.tolist()


def test_k2_ratio_makes_the_labels_at_the_scans_k1_with_k2_scaled_to_it():
    settings = load_config("drfm-cpu", [])["labels"]
    assert settings["k2"] == 2 and settings["k2_ratio"] == 0.2
    assert adapted_k2({**settings, "k2_ratio": None}, 25) == 2
    # round(0.2 k1), never below labels.k2 nor above k1: the paper's 6 at k1 = 30.
    assert [adapted_k2(settings, k1) for k1 in (6, 10, 12, 13, 20, 25, 30)] == [2, 2, 2, 3, 4, 5, 6]
    assert adapted_k2({**settings, "k2_ratio": 1.0, "k2": 1}, 4) == 4
    # The scan chooses k1 at labels.k2 as before; the chosen k1's labels are then made at the scaled k2.
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 16)
    features = F.normalize(torch.tensor(np.eye(32)[ids] + 0.2 * rng.standard_normal((len(ids), 32)),
                                        dtype=torch.float32), dim=1)
    scan = {**settings, "k2_ratio": None, "standardize": False, "color_weight": 0.0,
            "k1_candidates": [3, 6, 12, 18, 24, 30], "eps": 0.5}
    scan_with_ratio = {**scan, "k2_ratio": 0.25}
    plain, _, k1 = cluster_with_settings(features, scan)
    ratio, _, k1_ratio = cluster_with_settings(features, scan_with_ratio)
    k2 = adapted_k2(scan_with_ratio, k1)
    assert k1_ratio == k1 and k2 > 2
    expected, _, _ = cluster_with_settings(features, {**scan, "k1": k1, "k2": k2, "k1_candidates": []})
    assert ratio.tolist() == expected.tolist() != plain.tolist()
    # Without a scan, labels.k1 with the scaled k2.
    fixed, _, _ = cluster_with_settings(features, {**scan, "k1_candidates": [], "k1": 20, "k2_ratio": 0.25})
    at_five, _, _ = cluster_with_settings(features, {**scan, "k1_candidates": [], "k1": 20, "k2": 5})
    assert fixed.tolist() == at_five.tolist()
