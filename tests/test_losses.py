"""L_cc, L_ic, L_ps and L_sc against hand computations on 2-d / 3-d features.

v(a) = (cos a, sin a), so v(a) . v(b) = cos(a - b)."""

import math

import pytest
import torch

from drfm.losses import (
    cross_resolution_contrastive_loss,
    instance_consistency_loss,
    probability_sharpening_loss,
    single_centroid_contrastive_loss,
)


def v(*angles: float) -> torch.Tensor:
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float32)


def contrastive_term(f: float, positives: list[float], negatives: list[float], tau: float) -> float:
    """-(1/|P|) sum_p log(exp(f.c_p/tau) / sum_{P u Q} exp(f.c_q/tau)) with plain floats."""
    logits_p = [math.cos(f - c) / tau for c in positives]
    denominator = sum(math.exp(x) for x in logits_p) + sum(math.exp(math.cos(f - c) / tau) for c in negatives)
    return -sum(x - math.log(denominator) for x in logits_p) / len(positives)


def two_cluster_centroids() -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster 0: only the HR-origin centroid v(0); its missing LR-origin slot holds a decoy v(0.1)
    that must be ignored. Cluster 1: v(1.0) and v(1.2)."""
    centroids = torch.stack([v(0.0, 0.1), v(1.0, 1.2)])
    present = torch.tensor([[True, False], [True, True]])
    return centroids, present


def test_lcc_one_positive_and_fewer_negatives_than_q():
    centroids, present = two_cluster_centroids()
    loss = cross_resolution_contrastive_loss(
        v(0.1), torch.tensor([0]), centroids, present, num_negatives=20, temperature=0.5
    )
    assert loss.item() == pytest.approx(contrastive_term(0.1, [0.0], [1.0, 1.2], 0.5), rel=1e-5)


def test_lcc_two_positives():
    centroids, present = two_cluster_centroids()
    loss = cross_resolution_contrastive_loss(
        v(1.1), torch.tensor([1]), centroids, present, num_negatives=20, temperature=0.5
    )
    assert loss.item() == pytest.approx(contrastive_term(1.1, [1.0, 1.2], [0.0], 0.5), rel=1e-5)


def test_lcc_is_the_batch_mean():
    centroids, present = two_cluster_centroids()
    loss = cross_resolution_contrastive_loss(v(0.1, 1.1), torch.tensor([0, 1]), centroids, present, temperature=0.5)
    expected = (contrastive_term(0.1, [0.0], [1.0, 1.2], 0.5) + contrastive_term(1.1, [1.0, 1.2], [0.0], 0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_lcc_picks_the_nearest_negative_centroids():
    # f = v(0.3) in cluster 0 (v(0), v(0.2)); other centroids: v(2.0), v(2.5) (cluster 1),
    # v(0.6), v(3.0) (cluster 2). Nearest first: v(0.6) (cos 0.3), v(2.0) (cos 1.7), v(2.5), v(3.0).
    centroids = torch.stack([v(0.0, 0.2), v(2.0, 2.5), v(0.6, 3.0)])
    present = torch.ones(3, 2, dtype=torch.bool)
    label = torch.tensor([0])
    for q, nearest, farthest in [(1, [0.6], [3.0]), (2, [0.6, 2.0], [3.0, 2.5])]:
        loss = cross_resolution_contrastive_loss(v(0.3), label, centroids, present, num_negatives=q, temperature=0.5)
        assert loss.item() == pytest.approx(contrastive_term(0.3, [0.0, 0.2], nearest, 0.5), rel=1e-5)
        assert loss.item() != pytest.approx(contrastive_term(0.3, [0.0, 0.2], farthest, 0.5), rel=1e-3)
    loss = cross_resolution_contrastive_loss(v(0.3), label, centroids, present, num_negatives=0, temperature=0.5)
    assert loss.item() == pytest.approx(contrastive_term(0.3, [0.0, 0.2], [], 0.5), rel=1e-5)


def test_lcc_gradients_reach_features_only():
    centroids, present = two_cluster_centroids()
    centroids.requires_grad_(True)
    features = v(0.1, 1.1).requires_grad_(True)
    loss = cross_resolution_contrastive_loss(features, torch.tensor([0, 1]), centroids, present)
    loss.backward()
    assert torch.isfinite(loss)
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert centroids.grad is None


def test_lcc_rejects_a_cluster_without_centroid():
    centroids, _ = two_cluster_centroids()
    no_centroid_for_1 = torch.tensor([[True, True], [False, False]])
    with pytest.raises(ValueError, match="no present"):
        cross_resolution_contrastive_loss(v(0.1), torch.tensor([1]), centroids, no_centroid_for_1)


def test_lic_value():
    predicted = torch.tensor([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]], requires_grad=True)
    loss = instance_consistency_loss(predicted, target)
    # cos = 2 / (3 * 2) = 1/3 and 20 / (5 * 5) = 0.8
    assert loss.item() == pytest.approx(-(1 / 3 + 0.8) / 2)
    loss.backward()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0
    assert target.grad is None


def test_lic_gives_no_gradient_to_the_lr_encoder():
    torch.manual_seed(0)
    e_h, e_l, pred = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    x_sh, x_l = torch.randn(4, 3), torch.randn(4, 3)
    loss = instance_consistency_loss(pred(e_h(x_sh)), e_l(x_l))
    loss.backward()
    assert e_l.weight.grad is None and e_l.bias.grad is None
    assert e_h.weight.grad.abs().sum() > 0 and pred.weight.grad.abs().sum() > 0


def test_lps_value_and_stop_gradient_on_the_target():
    tau_s, tau_c = 0.02, 0.04
    angles, centroid_angles = [0.3, 1.4], [0.0, 1.0, 2.0]
    centroids = v(*centroid_angles).requires_grad_(True)
    fused = v(*angles).requires_grad_(True)
    loss = probability_sharpening_loss(fused, centroids, tau_s=tau_s, tau_c=tau_c)

    expected_loss, expected_grad = 0.0, []
    for a in angles:
        z = [math.cos(a - c) for c in centroid_angles]
        p = [math.exp(x / tau_s) for x in z]
        p = [x / sum(p) for x in p]
        q = [math.exp(x / tau_c) for x in z]
        q = [x / sum(q) for x in q]
        expected_loss += -sum(pk * math.log(qk) for pk, qk in zip(p, q)) / len(angles)
        # d/dz_k of -sum p log softmax(z / tau_c) with p constant: (q_k - p_k) / tau_c; dz_k/df = c_k.
        dz = [(qk - pk) / tau_c / len(angles) for pk, qk in zip(p, q)]
        expected_grad.append([sum(d * math.cos(c) for d, c in zip(dz, centroid_angles)),
                              sum(d * math.sin(c) for d, c in zip(dz, centroid_angles))])
    assert loss.item() == pytest.approx(expected_loss, rel=1e-5)
    loss.backward()
    torch.testing.assert_close(fused.grad, torch.tensor(expected_grad), rtol=1e-4, atol=1e-6)
    assert centroids.grad is None


def test_lps_empty_batch_is_zero():
    fused = torch.zeros(0, 2, requires_grad=True)
    loss = probability_sharpening_loss(fused, v(0.0, 1.0))
    assert loss.item() == 0.0 and loss.requires_grad


def test_lsc_value_and_constant_centroids():
    centroids = v(0.0, 1.0, 2.0).requires_grad_(True)
    features = v(0.3).requires_grad_(True)
    loss = single_centroid_contrastive_loss(features, torch.tensor([1]), centroids, temperature=0.05)
    logits = [math.cos(0.3 - c) / 0.05 for c in (0.0, 1.0, 2.0)]
    expected = -(logits[1] - math.log(sum(math.exp(x) for x in logits)))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert features.grad is not None and centroids.grad is None
