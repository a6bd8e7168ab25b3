"""The labelling step (drfm.labels.strategy): modes, oracle, standardisation, singletons, stripes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drfm.config import load_config
from drfm.labels.strategy import assign_pseudo_labels, cluster_with_settings, label_quality, standardized
from drfm.models.encoder import Encoder


def settings(**changes) -> dict:
    labels = load_config("drfm", [])["labels"]
    labels.update({"k1": 3, "k2": 1, "eps": 0.5, "min_samples": 2, **changes})
    return labels


def groups(centres: np.ndarray, per_group: int, noise: float, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Unit features: `per_group` noisy copies of every centre; (N, D) features and (N,) group ids."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(len(centres)), per_group)
    features = centres[ids] + noise * rng.standard_normal((len(ids), centres.shape[1]))
    return F.normalize(torch.tensor(features, dtype=torch.float32), dim=1), ids


def test_standardized_removes_the_shared_direction():
    # Every row = the same large shared vector + an own unit part: raw cosine similarities are all
    # above 0.99; after z-scoring (the shared dimensions have no variance) only the own parts
    # remain, and they form two pairs.
    shared = np.array([10.0, 10.0, 0.0, 0.0])
    own = np.array([[0, 0, 1, 0], [0, 0, 0.96, 0.28], [0, 0, 0, 1], [0, 0, 0.28, 0.96]])
    features = F.normalize(torch.tensor(shared + own, dtype=torch.float32), dim=1)
    assert (features @ features.T).min() > 0.99
    out = standardized(features)
    assert torch.allclose(out.norm(dim=1), torch.ones(4))
    similarity = out @ out.T
    assert similarity[0, 1] > 0.9 and similarity[2, 3] > 0.9 and similarity[0, 2] < -0.9


def test_standardized_by_group_removes_an_offset_that_sets_one_group_apart():
    # Two people, each with two HR rows (group 0) and two LR rows (group 1); every LR row carries
    # the same large offset (another camera, super-resolution). Over all rows the offset dominates
    # and the rows pair by group; z-scored per group, they pair by person.
    person = np.array([[1.0, 0.0], [0.0, 1.0]])
    rng = np.random.default_rng(0)
    hr = person[[0, 0, 1, 1]] + 0.05 * rng.standard_normal((4, 2))
    lr = person[[0, 0, 1, 1]] + 0.05 * rng.standard_normal((4, 2)) + np.array([3.0, -2.0])
    features = torch.tensor(np.concatenate([hr, lr]), dtype=torch.float32)
    origin = np.repeat([0, 1], 4)
    overall = standardized(features) @ standardized(features).T
    assert overall[0, 2] > overall[0, 4], "over all rows another HR person is nearer than one's own LR rows"
    by_group = standardized(features, origin)
    for rows in (np.flatnonzero(origin == 0), np.flatnonzero(origin == 1)):
        assert torch.allclose(by_group[rows], standardized(features[rows]), atol=1e-6), "each group over itself"
    similarity = by_group @ by_group.T
    assert similarity[0, 4] > 0.9 and similarity[2, 6] > 0.9 and similarity[0, 6] < -0.9
    assert torch.equal(standardized(features, np.zeros(8, dtype=np.int64)), standardized(features))


def test_singletons_give_every_outlier_its_own_cluster_after_the_dbscan_clusters():
    centres = np.eye(8)[:3] * 1.0
    features, _ = groups(centres, 3, noise=0.02)
    lone = F.normalize(torch.tensor(np.eye(8)[5:7], dtype=torch.float32), dim=1)
    features = torch.cat([features, lone])
    dropped, outliers, _ = cluster_with_settings(features, settings())
    assert outliers == 2 and (dropped[-2:] == -1).all() and dropped[:9].max() == 2
    kept, outliers, _ = cluster_with_settings(features, settings(outliers="singletons"))
    assert outliers == 2 and kept[:9].tolist() == dropped[:9].tolist() and sorted(kept[-2:].tolist()) == [3, 4]


def test_cpg_mode_clusters_hr_and_labels_lr_and_quality_is_pairwise():
    centres = np.eye(16)[:4]
    hr, ids = groups(centres, 3, noise=0.05)
    lr, lr_ids = groups(centres, 2, noise=0.05, seed=1)
    features = torch.cat([hr, lr])
    origin = np.array([0] * len(hr) + [1] * len(lr))
    pids = np.concatenate([ids, lr_ids])
    result = assign_pseudo_labels(settings(t=1.0), features, features, origin, pids)
    assert result.num_clusters == 4 and result.stats["N1c"] == 12 and result.stats["num_outliers"] == 0
    assert result.stats["num_labelled_lr"] == 8 and result.ambiguous.size == 0
    assert result.stats["label_quality"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert result.stats["mixed_share"] == 1.0  # every cluster holds its person's HR and LR images
    oracle = assign_pseudo_labels(settings(oracle=True), features, features, origin, pids)
    assert np.array_equal(oracle.labels, pids) and oracle.stats["oracle"]


def test_dual_mode_needs_both_views_to_agree_and_leaves_unplaced_lr_images_to_l_ps():
    # Six images: HR 0-2, LR 3-5. Alone, the E_h features would pair {0,3} {1,4} {2,5}; alone,
    # the E_l features would pair {0,4} {1,3} {2,5}. Only {2,5} agrees in both views, so dual
    # clustering (both parts, concatenated) joins only 2 and 5 — a mode clustering one view would
    # join all three pairs. LR images 3 and 4 stay unlabelled and are left to L_ps.
    e = np.eye(8)
    hr = F.normalize(torch.tensor(e[[0, 1, 2, 0, 1, 2]] + 0.01, dtype=torch.float32), dim=1)
    lr = F.normalize(torch.tensor(e[[4, 5, 6, 5, 4, 6]] + 0.01, dtype=torch.float32), dim=1)
    origin = np.array([0, 0, 0, 1, 1, 1])
    result = assign_pseudo_labels(settings(mode="dual", k1=2, eps=0.4), hr, lr, origin, quality=False)
    assert result.labels.tolist() == [-1, -1, 0, -1, -1, 0] and result.num_clusters == 1
    assert result.ambiguous.tolist() == [3, 4] and result.stats["num_outliers"] == 4
    assert result.stats["mixed_share"] == 1.0
    by_resolution = assign_pseudo_labels(settings(mode="dual", k1=2, eps=0.4), hr, lr, np.array([0, 0, 1, 0, 0, 1]),
                                         quality=False)
    assert by_resolution.stats["mixed_share"] == 0.0  # the one cluster {2, 5} now holds two LR images
    sr_view_only = assign_pseudo_labels(settings(mode="sr", k1=2, eps=0.4), hr, lr, origin, quality=False)
    assert sr_view_only.num_clusters == 3 and sr_view_only.ambiguous.size == 0


def test_label_quality_by_hand():
    # Pairs predicted together: (0,1), (2,3); true pairs: (0,1), (1,2), (0,2). One of two predicted
    # pairs is right (precision 1/2), one of three true pairs found (recall 1/3), F = 0.4.
    quality = label_quality(np.array([0, 0, 1, 1]), np.array([7, 7, 7, 8]))
    assert quality["precision"] == pytest.approx(0.5) and quality["recall"] == pytest.approx(1 / 3)
    assert quality["f1"] == pytest.approx(0.4)


def test_stripes_are_clustered_instead_of_the_features_when_given():
    # The global features say {0,1} {2,3}; the stripe features say {0,2} {1,3}: the labels follow
    # the stripes.
    a, b = np.eye(4)[0], np.eye(4)[1]
    features = F.normalize(torch.tensor(np.stack([a, a, b, b]) + 0.01, dtype=torch.float32), dim=1)
    stripes = F.normalize(torch.tensor(np.stack([a, b, a, b]) + 0.01, dtype=torch.float32), dim=1)
    origin = np.zeros(4, dtype=np.int64)
    labels = assign_pseudo_labels(settings(k1=2, mode="cpg"), features, features, origin, quality=False,
                                  stripes=(stripes, stripes)).labels
    assert labels[0] == labels[2] != labels[1] == labels[3]


def test_encoder_stripes_pool_rows_of_the_map_in_the_same_pass():
    torch.manual_seed(0)
    encoder = Encoder("resnet18", pretrained=False, last_stride=1).eval()
    images = torch.randn(2, 3, 64, 32)
    features, stripes = encoder(images, stripes=2)
    assert torch.equal(features, encoder(images))
    feature_map = encoder.backbone(images)  # (2, 512, 4, 2): stripes = rows 0-1 and rows 2-3
    top = F.normalize(feature_map[:, :, :2].mean(dim=(2, 3)), dim=1)
    bottom = F.normalize(feature_map[:, :, 2:].mean(dim=(2, 3)), dim=1)
    assert torch.allclose(stripes, torch.cat([top, bottom], dim=1) / 2 ** 0.5, atol=1e-6)
