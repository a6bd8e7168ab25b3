"""Cross-resolution pseudo-label generation (CPG, SPEC "Cross-resolution pseudo-label generation",
steps 3-6), and the pairwise precision / recall / F-score of pseudo-labels (the paper's Figure 6).

Clustering of the HR features happens before (`drfm.labels.cluster`); CPG receives its labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from drfm.errors import DrfmError
from drfm.utils.group_means import normalized_group_means


@dataclass
class CPGResult:
    """Pseudo-labels of one epoch.

    Attributes:
        hr_labels: (N1,) int64 cluster of every HR image, -1 = outlier (a copy of the input); the
            SLR twin of HR image i shares hr_labels[i].
        lr_labels: (N2,) int64 label of every LR image (and of its SHR twin), -1 = ambiguous.
        lr_scores: (N2,) float32 max_k s_lsh: the confidence of every LR image.
        lr_candidate_labels: (N2,) int64 argmax_k s_lsh for every LR image, ambiguous ones included
            (-1 everywhere when there is no cluster).
        num_clusters: K.
        n1: N1, the number of HR images.
        n1c: N1c, the number of HR images that got a cluster.
        t_fraction: T = (N1c / N1) * t, the fraction of LR images that take a label.
        num_labelled_lr: the number of LR images with a label, round-half-up(T * N2).
        hr_centroids: (K, D) C_h, L2-normalised per-cluster means of f_h.
        slr_centroids: (K, D) C_sl, L2-normalised per-cluster means of f_sl.
    """

    hr_labels: Tensor
    lr_labels: Tensor
    lr_scores: Tensor
    lr_candidate_labels: Tensor
    num_clusters: int
    n1: int
    n1c: int
    t_fraction: float
    num_labelled_lr: int
    hr_centroids: Tensor
    slr_centroids: Tensor


def relabel_contiguous(labels: Tensor) -> Tensor:
    """Map arbitrary non-negative cluster ids to 0..K-1 (in increasing order of id); every negative
    id becomes -1.

    Args:
        labels: (N,) integer cluster ids.

    Returns:
        (N,) int64: e.g. [5, -1, 2, 5, 9] -> [1, -1, 0, 1, 2].
    """
    labels = labels.long()
    out = torch.full_like(labels, -1)
    keep = labels >= 0
    out[keep] = torch.unique(labels[keep], sorted=True, return_inverse=True)[1]
    return out


def _num_clusters(hr_labels: Tensor) -> int:
    """K for labels that must be contiguous 0..K-1 (-1 = outlier); ValueError otherwise."""
    labelled = hr_labels[hr_labels >= 0]
    if labelled.numel() == 0:
        return 0
    num_clusters = int(labelled.max()) + 1
    if bool((torch.bincount(labelled, minlength=num_clusters) == 0).any()):
        raise ValueError("CPG: HR cluster labels must be contiguous 0..K-1 (use relabel_contiguous)")
    return num_clusters


def cross_resolution_pseudo_labels(
    hr_labels: Tensor,
    f_h: Tensor,
    f_sl: Tensor,
    f_l: Tensor,
    f_sh: Tensor,
    t: float,
    tau_l: float = 0.04,
    tau_h: float = 0.05,
) -> CPGResult:
    """Give the most confident LR images (and their SHR twins) the label of an HR cluster.

    C_h, C_sl = L2-normalised per-cluster means of f_h, f_sl over the labelled HR images; then per LR
    image s_l = softmax(f_l C_sl^T / tau_l), s_sh = softmax(f_sh C_h^T / tau_h) and
    s_lsh = (s_l * s_sh) / ||s_l * s_sh||_1, computed as softmax(log s_l + log s_sh): the same
    quantity (the product's normaliser cancels) without underflow when both factors are tiny.
    score = max s_lsh, candidate label = argmax s_lsh. With T = (N1c / N1) * t, the
    round-half-up(T * N2) LR images of highest score keep their candidate label (ties broken by the
    lower index first: a stable sort); the others are ambiguous (-1).

    Args:
        hr_labels: (N1,) int64 HR cluster labels, contiguous 0..K-1, -1 = outlier.
        f_h: (N1, D) HR features E_h(x_h), L2-normalised.
        f_sl: (N1, D) SLR features E_l(x_sl) of the same HR images, L2-normalised.
        f_l: (N2, D) LR features E_l(x_l), L2-normalised.
        f_sh: (N2, D) SHR features E_h(x_sh) of the same LR images, L2-normalised.
        t: the proportion hyper-parameter in [0, 1] (0.7 MLR-CUHK03, 0.8 MLR-Market-1501).
        tau_l: temperature of s_l (> 0).
        tau_h: temperature of s_sh (> 0).

    Returns:
        A `CPGResult`. With no cluster every LR image is ambiguous and num_clusters is 0.
    """
    if not 0.0 <= t <= 1.0:
        raise DrfmError(f"CPG option t must be in [0, 1], got {t}")
    if tau_l <= 0 or tau_h <= 0:
        raise DrfmError(f"CPG temperatures tau_l and tau_h must be > 0, got {tau_l} and {tau_h}")
    n1, n2 = hr_labels.shape[0], f_l.shape[0]
    if f_h.shape != f_sl.shape or f_h.shape[0] != n1 or f_l.shape != f_sh.shape or f_l.shape[1] != f_h.shape[1]:
        raise ValueError(
            f"CPG: need f_h, f_sl (N1, D) with N1 = len(hr_labels) = {n1} and f_l, f_sh (N2, D); got "
            f"{tuple(f_h.shape)}, {tuple(f_sl.shape)}, {tuple(f_l.shape)}, {tuple(f_sh.shape)}"
        )
    hr_labels = hr_labels.long().clone()
    num_clusters = _num_clusters(hr_labels)
    n1c = int((hr_labels >= 0).sum())
    t_fraction = n1c / n1 * t if n1 else 0.0
    hr_centroids = normalized_group_means(f_h, hr_labels, num_clusters)[0]
    slr_centroids = normalized_group_means(f_sl, hr_labels, num_clusters)[0]

    lr_labels = torch.full((n2,), -1, dtype=torch.long, device=f_l.device)
    if num_clusters == 0:
        return CPGResult(
            hr_labels, lr_labels, f_l.new_zeros(n2), lr_labels.clone(), 0, n1, n1c, t_fraction, 0,
            hr_centroids, slr_centroids,
        )

    log_s_l = torch.log_softmax(f_l @ slr_centroids.t() / tau_l, dim=1)
    log_s_sh = torch.log_softmax(f_sh @ hr_centroids.t() / tau_h, dim=1)
    s_lsh = torch.softmax(log_s_l + log_s_sh, dim=1)
    lr_scores, candidates = s_lsh.max(dim=1)

    num_labelled = min(n2, math.floor(t_fraction * n2 + 0.5))
    order = torch.sort(lr_scores, descending=True, stable=True).indices
    confident = order[:num_labelled]
    lr_labels[confident] = candidates[confident]
    return CPGResult(
        hr_labels, lr_labels, lr_scores, candidates, num_clusters, n1, n1c, t_fraction, num_labelled,
        hr_centroids, slr_centroids,
    )


def pairwise_precision_recall_f1(pred_labels: Tensor, true_pids: Tensor) -> tuple[float, float, float]:
    """Pairwise precision, recall and F-score of pseudo-labels against ground-truth identities.

    A pair of samples is predicted positive when both have the same predicted label >= 0; a pair
    involving an unlabelled sample (-1) is predicted negative. A pair is truly positive when both
    have the same ground-truth id; truly positive pairs are counted over ALL samples, so leaving a
    sample unlabelled costs recall. Every distinct value of `true_pids` is one identity.
    Computed from contingency counts (no N x N matrix): with n_ij = |{pred = i, true = j}| over the
    labelled samples, a_i = |{pred = i}|, b_j = |{true = j}| over all samples,
    TP = sum C(n_ij, 2), precision = TP / sum C(a_i, 2), recall = TP / sum C(b_j, 2),
    F = 2PR / (P + R); each is 0 where its denominator is 0.

    Args:
        pred_labels: (N,) int64 pseudo-labels, -1 = none.
        true_pids: (N,) int64 ground-truth identities.

    Returns:
        (precision, recall, f1) as Python floats in [0, 1].
    """
    pred_labels = torch.as_tensor(pred_labels).long().cpu()
    true_pids = torch.as_tensor(true_pids).long().cpu()
    if pred_labels.shape != true_pids.shape or pred_labels.dim() != 1:
        raise ValueError(
            f"pairwise_precision_recall_f1: need two (N,) tensors, got {tuple(pred_labels.shape)} and "
            f"{tuple(true_pids.shape)}"
        )
    return precision_recall_f1(*pair_counts(pred_labels, true_pids))


def pair_counts(pred_labels: Tensor, true_pids: Tensor) -> tuple[int, int, int]:
    """(true positive, predicted positive, actually positive) pair counts of (N,) int64 labels
    (-1 = none) against (N,) int64 identities, from contingency counts (no N x N matrix)."""

    def pairs(counts: Tensor) -> int:
        return int((counts * (counts - 1) // 2).sum())

    pred_labels, true_pids = torch.as_tensor(pred_labels).long(), torch.as_tensor(true_pids).long()
    labelled = pred_labels >= 0
    joint = torch.stack([pred_labels[labelled], true_pids[labelled]], dim=1)
    true_positive = pairs(torch.unique(joint, dim=0, return_counts=True)[1]) if joint.numel() else 0
    return (true_positive, pairs(torch.unique(pred_labels[labelled], return_counts=True)[1]),
            pairs(torch.unique(true_pids, return_counts=True)[1]))


def precision_recall_f1(true_positive: int, predicted: int, actual: int) -> tuple[float, float, float]:
    """(precision, recall, F-score) from pair counts; each 0.0 where its denominator is 0."""
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
