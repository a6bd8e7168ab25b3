"""L_cc: cross-resolution contrastive loss over resolution centroids (Eq. 16-17)."""

from __future__ import annotations

import torch
from torch import Tensor


def cross_resolution_contrastive_loss(
    features: Tensor,
    labels: Tensor,
    centroids: Tensor,
    present: Tensor,
    num_negatives: int = 20,
    temperature: float = 0.04,
) -> Tensor:
    """Contrast every feature with all resolution centroids of its cluster and the nearest others.

    For a feature f of cluster y in one space: P = the present resolution centroids of cluster y
    (1 or 2); Q = the `num_negatives` present resolution centroids of OTHER clusters with the
    largest f . c (fewer when fewer exist);

        L(f) = -(1/|P|) sum_{p in P} log( exp(f . c_p / tau) / sum_{q in P u Q} exp(f . c_q / tau) )

    and the result is the mean of L(f) over the batch. Call it once per space and add the three
    (Eq. 17).

    Args:
        features: (B, D) L2-normalised features (gradients flow into them).
        labels: (B,) int64 cluster labels in 0..K-1.
        centroids: (K, 2, D) resolution centroids from `InstanceMemory.resolution_centroids`
            (treated as constants: detached).
        present: (K, 2) bool, which resolution centroids exist.
        num_negatives: |Q|, >= 0 (the paper: 20).
        temperature: tau_c > 0 (the paper: 0.04).

    Returns:
        Scalar loss (0 for an empty batch, still attached to the graph).

    Raises:
        ValueError: a label's cluster has no present centroid, or num_negatives < 0.
    """
    if num_negatives < 0:
        raise ValueError(f"cross_resolution_contrastive_loss: num_negatives must be >= 0, got {num_negatives}")
    if features.shape[0] == 0:
        return features.sum() * 0.0
    num_clusters, num_origins, dim = centroids.shape
    flat_present = present.reshape(-1)
    logits = features @ centroids.detach().reshape(-1, dim).t() / temperature
    column_cluster = torch.arange(num_clusters, device=labels.device).repeat_interleave(num_origins)
    own_cluster = column_cluster.unsqueeze(0) == labels.unsqueeze(1)
    positive = own_cluster & flat_present
    num_positive = positive.sum(dim=1)
    if not bool((num_positive > 0).all()):
        raise ValueError("cross_resolution_contrastive_loss: a sample's cluster has no present resolution centroid")

    candidate = ~own_cluster & flat_present
    selected = positive
    num_taken = min(num_negatives, logits.shape[1])
    if num_taken > 0:
        candidate_logits = logits.detach().masked_fill(~candidate, float("-inf"))
        top_values, top_columns = candidate_logits.topk(num_taken, dim=1)
        negative = torch.zeros_like(candidate).scatter_(1, top_columns, top_values > float("-inf"))
        selected = positive | negative

    log_denominator = torch.logsumexp(logits.masked_fill(~selected, float("-inf")), dim=1, keepdim=True)
    log_prob = torch.where(positive, logits - log_denominator, torch.zeros_like(logits))
    return (-log_prob.sum(dim=1) / num_positive).mean()
