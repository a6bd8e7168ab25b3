"""Per-group means of feature rows: cluster centroids for pseudo-labelling (CPG), memories and
diagnostics alike."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def normalized_group_means(
    features: Tensor, groups: Tensor, num_groups: int, normalize: bool = True
) -> tuple[Tensor, Tensor]:
    """L2-normalised mean feature of every group, and the group sizes.

    Args:
        features: (N, D) float features.
        groups: (N,) int64 group index in 0..num_groups-1; rows with a negative index are ignored.
        num_groups: G, the number of groups.
        normalize: False returns the plain per-group sums instead of the normalised means.

    Returns:
        means: (G, D) L2-normalised per-group means (a zero row for an empty group), or the sums;
        counts: (G,) int64 number of rows in each group.
    """
    keep = groups >= 0
    kept_groups = groups[keep]
    sums = features.new_zeros((num_groups, features.shape[1]))
    sums.index_add_(0, kept_groups, features[keep])
    counts = torch.bincount(kept_groups, minlength=num_groups)
    return (F.normalize(sums, dim=1) if normalize else sums), counts
