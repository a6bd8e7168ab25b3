"""L_sc: single-centroid contrastive loss (non-parametric softmax over cluster centroids).

Used by the ablations A1-A6 (SPEC "Losses") and, with `ClusterMemory` centroids, by the Cluster Contrast
baseline.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def single_centroid_contrastive_loss(
    features: Tensor, labels: Tensor, centroids: Tensor, temperature: float = 0.05
) -> Tensor:
    """Cross-entropy over all cluster centroids, one positive (the own cluster), all others negative.

        L = -(1/B) sum_i log( exp(f_i . c_{y_i} / tau) / sum_{k=1..K} exp(f_i . c_k / tau) )

    Args:
        features: (B, D) L2-normalised features (gradients flow into them).
        labels: (B,) int64 cluster labels in 0..K-1.
        centroids: (K, D) L2-normalised centroids from a memory, treated as constants (detached).
        temperature: tau > 0.

    Returns:
        Scalar loss, the mean over the batch (0 for an empty batch, still attached to the graph).
    """
    if features.shape[0] == 0:
        return features.sum() * 0.0
    logits = features @ centroids.detach().t() / temperature
    return F.cross_entropy(logits, labels)
