"""Self-paced cluster reliability (labels.reliability_delta): the IoUs and the filter checked by hand on
tiny labellings, the clustering against cluster_features, and the keys in the labelling settings and
the configuration checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drfm.config import load_config
from drfm.errors import DrfmError
from drfm.labels.cluster import cluster_features
from drfm.labels.reliability import cluster_reliably, member_iou, reliable_labels
from drfm.labels.strategy import cluster_with_settings

# Cluster 0 = {0, 1, 2}, cluster 1 = {3, 4}, image 5 an outlier. At the tight radius image 2 falls out;
# at the loose radius clusters 0 and 1 merge.
LABELS = np.array([0, 0, 0, 1, 1, -1])
TIGHT = np.array([0, 0, -1, 1, 1, -1])
LOOSE = np.array([0, 0, 0, 0, 0, -1])


def test_member_iou_by_hand():
    # Images 0, 1: {0, 1, 2} vs {0, 1} -> 2/3; image 2: {0, 1, 2} vs {2} -> 1/3; outliers are their own clusters.
    assert member_iou(LABELS, TIGHT) == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1, 1, 1])
    # {0, 1, 2} vs {0..4} -> 3/5; {3, 4} vs {0..4} -> 2/5.
    assert member_iou(LABELS, LOOSE) == pytest.approx([0.6, 0.6, 0.6, 0.4, 0.4, 1])
    assert member_iou(LABELS, LABELS).tolist() == [1.0] * 6


def test_reliable_labels_drop_loose_members_then_dependent_clusters():
    # Compactness 0.5 drops image 2 only.
    assert reliable_labels(LABELS, TIGHT, LOOSE, 0.0, 0.5).tolist() == [0, 0, -1, 1, 1, -1]
    # Independence 0.5 also drops cluster 1 (2/5), and the survivors are renumbered from 0.
    assert reliable_labels(LABELS, TIGHT, LOOSE, 0.5, 0.0).tolist() == [0, 0, 0, -1, -1, -1]
    assert reliable_labels(LABELS[::-1], TIGHT[::-1], LOOSE[::-1], 0.5, 0.0).tolist() == [-1, -1, -1, 0, 0, 0]
    # Zero thresholds keep everything; a cluster left with one member loses it.
    assert reliable_labels(LABELS, TIGHT, LOOSE, 0.0, 0.0).tolist() == LABELS.tolist()
    assert reliable_labels(np.array([0, 0, 1]), np.array([0, -1, 1]), np.array([0, 0, 1]), 0.0, 0.6).tolist() \
        == [-1, -1, -1]
    assert reliable_labels(np.full(3, -1), np.full(3, -1), np.full(3, -1), 0.5, 0.5).tolist() == [-1, -1, -1]


def three_groups() -> torch.Tensor:
    """(24, 16) unit rows: groups A (0-7) and B (8-15) close to each other, C (16-23) far from both."""
    centres = np.zeros((24, 16))
    centres[:16, 0] = 1
    centres[8:16, 1] = 0.3
    centres[16:, 2] = 1
    noise = 0.08 * np.random.default_rng(0).standard_normal(centres.shape)
    return F.normalize(torch.tensor(centres + noise, dtype=torch.float32), dim=1)


def test_cluster_reliably_drops_a_merge_that_splits_at_the_tight_radius():
    features = three_groups()
    plain = cluster_features(features, k1=8, k2=2, eps=0.6, min_samples=2)
    tight = cluster_features(features, k1=8, k2=2, eps=0.5, min_samples=2)
    # At eps 0.6 A and B form one cluster, C another; at 0.5 the merge falls apart.
    assert len(set(plain[:16])) == 1 and len(set(plain[16:])) == 1 and plain[0] != plain[16]
    assert len(set(tight[:16]) - {-1}) > 1
    assert cluster_reliably(features, 8, 2, 0.6, 2, 0.1, 0.0, 0.6).tolist() == [-1] * 16 + [0] * 8
    # Zero thresholds keep DBSCAN's labels as they are.
    assert cluster_reliably(features, 8, 2, 0.6, 2, 0.1, 0.0, 0.0).tolist() == plain.tolist()


def test_reliability_delta_in_the_labelling_settings():
    settings = {**load_config("drfm-cpu", [])["labels"], "k1_candidates": [], "k1": 8, "color_weight": 0.0,
                "standardize": False, "eps": 0.6}
    assert settings["reliability_delta"] is None
    features = three_groups()
    off, _, _ = cluster_with_settings(features, settings)
    reliable = {**settings, "reliability_delta": 0.1, "min_independence": 0.0, "min_compactness": 0.6}
    on, _, _ = cluster_with_settings(features, reliable)
    assert on.tolist() == [-1] * 16 + [0] * 8 and off.tolist() == cluster_features(features, 8, 2, 0.6, 2).tolist()
    with pytest.raises(DrfmError, match="labels.reliability_delta"):
        load_config("drfm-cpu", ["labels.reliability_delta=1.5"])
    with pytest.raises(DrfmError, match="labels.min_compactness"):
        load_config("drfm-cpu", ["labels.min_compactness=-0.1"])
