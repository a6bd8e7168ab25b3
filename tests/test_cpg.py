"""CPG (cross-resolution pseudo-label generation) and the pairwise pseudo-label metrics, checked
against hand computations on 2-d features v(a) = (cos a, sin a): v(a) . v(b) = cos(a - b), and the
normalised mean of v(a) and v(b) is v((a + b) / 2)."""

import itertools
import math

import pytest
import torch

from drfm.errors import DrfmError
from drfm.labels.cpg import cross_resolution_pseudo_labels, pairwise_precision_recall_f1, relabel_contiguous


def v(*angles: float) -> torch.Tensor:
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float32)


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(x) for x in values]
    return [e / sum(exps) for e in exps]


# 5 HR images: clusters 0 = {0, 1}, 1 = {2, 3}, image 4 is an outlier.
HR_LABELS = torch.tensor([0, 0, 1, 1, -1])
HR_ANGLES = [0.0, 0.2, 1.5, 1.3, 0.8]  # C_h = v(0.1), v(1.4)
SLR_ANGLES = [0.1, 0.3, 1.2, 1.4, 0.5]  # C_sl = v(0.2), v(1.3)
C_H_ANGLES = [0.1, 1.4]
C_SL_ANGLES = [0.2, 1.3]
# 6 LR images and their SHR twins.
LR_ANGLES = [0.2, 1.35, 0.3, 0.7, 1.0, 0.45]
SHR_ANGLES = [0.1, 1.4, 1.2, 0.8, 1.1, 0.35]
TAU = 0.5


def hand_scores_and_labels() -> tuple[list[float], list[int]]:
    """s_lsh = s_l * s_sh / ||s_l * s_sh||_1 per LR image, with plain floats."""
    scores, labels = [], []
    for a_l, a_sh in zip(LR_ANGLES, SHR_ANGLES):
        s_l = softmax([math.cos(a_l - c) / TAU for c in C_SL_ANGLES])
        s_sh = softmax([math.cos(a_sh - c) / TAU for c in C_H_ANGLES])
        product = [p * q for p, q in zip(s_l, s_sh)]
        s_lsh = [p / sum(product) for p in product]
        scores.append(max(s_lsh))
        labels.append(s_lsh.index(max(s_lsh)))
    return scores, labels


def run_cpg(t: float, tau: float = TAU):
    return cross_resolution_pseudo_labels(
        HR_LABELS, v(*HR_ANGLES), v(*SLR_ANGLES), v(*LR_ANGLES), v(*SHR_ANGLES), t=t, tau_l=tau, tau_h=tau
    )


def test_centroids_are_normalised_cluster_means_without_outliers():
    result = run_cpg(t=0.75)
    torch.testing.assert_close(result.hr_centroids, v(*C_H_ANGLES))
    torch.testing.assert_close(result.slr_centroids, v(*C_SL_ANGLES))
    assert torch.equal(result.hr_labels, HR_LABELS)
    assert result.num_clusters == 2


def test_scores_and_labels_come_from_the_product_of_the_two_softmaxes():
    result = run_cpg(t=0.75)
    scores, labels = hand_scores_and_labels()
    torch.testing.assert_close(result.lr_scores, torch.tensor(scores), rtol=0, atol=1e-6)
    assert result.lr_candidate_labels.tolist() == labels
    # Image 2: s_l prefers cluster 0 (0.71), s_sh cluster 1 (0.74); the product picks cluster 1.
    s_l = softmax([math.cos(0.3 - c) / TAU for c in C_SL_ANGLES])
    s_sh = softmax([math.cos(1.2 - c) / TAU for c in C_H_ANGLES])
    assert s_l[0] > s_l[1] and s_sh[1] > s_sh[0]
    assert result.lr_candidate_labels[2] == 1
    s_lsh_1 = s_l[1] * s_sh[1] / (s_l[0] * s_sh[0] + s_l[1] * s_sh[1])
    assert result.lr_scores[2].item() == pytest.approx(s_lsh_1, abs=1e-6)


def test_t_fraction_counts_outliers_and_the_exact_ambiguous_set():
    result = run_cpg(t=0.75)
    assert (result.n1, result.n1c) == (5, 4)
    assert result.t_fraction == pytest.approx(4 / 5 * 0.75)  # T = 0.6
    # T * N2 = 3.6 -> 4 labelled LR images (floor would give 3).
    assert result.num_labelled_lr == 4
    scores, labels = hand_scores_and_labels()
    ranked = sorted(range(6), key=lambda i: -scores[i])
    assert set(ranked[4:]) == {2, 3}
    expected = [labels[i] if i not in (2, 3) else -1 for i in range(6)]
    assert result.lr_labels.tolist() == expected == [0, 1, -1, -1, 1, 0]


def test_count_rounds_half_up():
    # No outlier: T = t = 0.75, T * N2 = 4.5 -> 5 (Python's round() would give 4).
    hr_labels = torch.tensor([0, 0, 1, 1])
    result = cross_resolution_pseudo_labels(
        hr_labels, v(0.0, 0.2, 1.5, 1.3), v(0.1, 0.3, 1.2, 1.4), v(*LR_ANGLES), v(*SHR_ANGLES), t=0.75,
        tau_l=TAU, tau_h=TAU,
    )
    assert result.t_fraction == 0.75
    assert result.num_labelled_lr == 5
    assert int((result.lr_labels >= 0).sum()) == 5
    # 4.4 -> 4
    result = cross_resolution_pseudo_labels(
        hr_labels, v(0.0, 0.2, 1.5, 1.3), v(0.1, 0.3, 1.2, 1.4), v(*LR_ANGLES[:5], 0.5, 0.6, 0.7, 0.8, 0.9),
        v(*SHR_ANGLES[:5], 0.5, 0.6, 0.7, 0.8, 0.9), t=0.44, tau_l=TAU, tau_h=TAU,
    )
    assert result.num_labelled_lr == 4


def test_equal_scores_keep_the_lower_index_first():
    hr_labels = torch.tensor([0, 1])
    lr = v(0.3, 0.3, 0.3)
    result = cross_resolution_pseudo_labels(hr_labels, v(0.0, 1.5), v(0.0, 1.5), lr, lr, t=2 / 3)
    assert result.lr_labels.tolist() == [0, 0, -1]


def test_t_one_and_t_zero():
    assert (run_cpg(t=1.0).lr_labels >= 0).sum() == round(0.8 * 6)  # 4.8 -> 5
    assert (run_cpg(t=0.0).lr_labels == -1).all()


def test_default_temperatures_give_the_same_candidates_here():
    scores_default = run_cpg(t=0.75, tau=0.04)
    assert scores_default.lr_candidate_labels[:2].tolist() == [0, 1]
    assert torch.isfinite(scores_default.lr_scores).all()


def test_log_space_survives_tiny_factors():
    # Both softmaxes put ~exp(-100) on the winning class for LR image 0: the plain product underflows.
    hr_labels = torch.tensor([0, 1, 2])
    centroids = v(0.0, math.pi / 2, math.pi)
    lr = v(math.pi / 2)
    shr = v(math.pi / 2)
    result = cross_resolution_pseudo_labels(hr_labels, centroids, centroids, lr, shr, t=1.0, tau_l=0.01, tau_h=0.01)
    assert result.lr_candidate_labels.tolist() == [1]
    assert result.lr_scores.item() == pytest.approx(1.0)


def test_no_cluster_makes_every_lr_image_ambiguous():
    result = cross_resolution_pseudo_labels(
        torch.tensor([-1, -1]), v(0.0, 1.0), v(0.0, 1.0), v(0.1, 0.2, 0.3), v(0.1, 0.2, 0.3), t=0.8
    )
    assert result.num_clusters == 0 and result.n1c == 0 and result.t_fraction == 0.0
    assert result.lr_labels.tolist() == [-1, -1, -1]
    assert result.num_labelled_lr == 0
    assert result.hr_centroids.shape == (0, 2)


def test_bad_inputs():
    with pytest.raises(DrfmError, match="t must be in"):
        run_cpg(t=1.5)
    with pytest.raises(ValueError, match="contiguous"):
        cross_resolution_pseudo_labels(torch.tensor([0, 2]), v(0, 1), v(0, 1), v(0), v(0), t=0.5)
    with pytest.raises(ValueError, match="N1"):
        cross_resolution_pseudo_labels(torch.tensor([0, 1, 1]), v(0, 1), v(0, 1), v(0), v(0), t=0.5)


def test_relabel_contiguous():
    assert relabel_contiguous(torch.tensor([5, -1, 2, 5, 9])).tolist() == [1, -1, 0, 1, 2]
    assert relabel_contiguous(torch.tensor([-1, -3])).tolist() == [-1, -1]


def brute_force_pairs(pred: list[int], true: list[int]) -> tuple[float, float, float]:
    tp = pp = ap = 0
    for i, j in itertools.combinations(range(len(pred)), 2):
        predicted = pred[i] >= 0 and pred[i] == pred[j]
        actual = true[i] == true[j]
        tp += predicted and actual
        pp += predicted
        ap += actual
    precision, recall = tp / pp, tp / ap
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_pairwise_precision_recall_f1_hand_example():
    pred = [0, 0, 0, 1, 1, -1]
    true = [5, 5, 7, 7, 7, 7]
    # Predicted pairs: (0,1) right, (0,2) wrong, (1,2) wrong, (3,4) right -> precision 2/4.
    # True pairs over all samples: id 5 -> 1, id 7 (4 samples, one unlabelled) -> 6 -> recall 2/7.
    precision, recall, f1 = pairwise_precision_recall_f1(torch.tensor(pred), torch.tensor(true))
    assert precision == pytest.approx(0.5)
    assert recall == pytest.approx(2 / 7)
    assert f1 == pytest.approx(4 / 11)
    assert (precision, recall, f1) == pytest.approx(brute_force_pairs(pred, true))


def test_pairwise_metrics_edge_cases():
    assert pairwise_precision_recall_f1(torch.tensor([-1, -1]), torch.tensor([1, 1])) == (0.0, 0.0, 0.0)
    assert pairwise_precision_recall_f1(torch.tensor([3, 3, 4]), torch.tensor([1, 1, 2])) == (1.0, 1.0, 1.0)
