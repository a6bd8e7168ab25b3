"""The Cluster Contrast baseline's memory: one centroid per cluster, momentum-updated.

Differences from cluster-contrast-reid's `ClusterMemory`: the update is an explicit method called
after the optimiser step (never a side effect inside `backward`), and it is vectorised: the batch's
features are first averaged per cluster, then each touched centroid takes ONE momentum step
c <- m * c + (1 - m) * mean_batch(f), c <- c / ||c||_2. The reference applies the step once per
sample in batch order, so a cluster with n samples in the batch keeps weight m^n of its old value
there versus m here; with one sample per cluster in the batch the two agree exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drfm.memory.memories import momentum_update_rows
from drfm.utils.group_means import normalized_group_means


class ClusterMemory(nn.Module):
    """K L2-normalised cluster centroids (buffer `centroids`, (K, D)); the baseline's loss reads
    them (drfm.engine.objective, `single_centroid_contrastive_loss`)."""

    def __init__(self, centroids: Tensor, momentum: float = 0.1) -> None:
        """Hold `centroids` (K, D) (L2-normalised here, a detached copy); `momentum` m in [0, 1] is
        the weight the old centroid keeps in `update` (0.1)."""
        super().__init__()
        if centroids.dim() != 2:
            raise ValueError(f"ClusterMemory: centroids must be (K, D), got {tuple(centroids.shape)}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"ClusterMemory: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("centroids", F.normalize(centroids.detach().float(), dim=1).clone())

    @classmethod
    def from_features(cls, features: Tensor, labels: Tensor, num_clusters: int, momentum: float = 0.1) -> ClusterMemory:
        """Initialise from one epoch's features (N, D) and labels (N,) (-1 ignored): cluster means."""
        return cls(normalized_group_means(features, labels, num_clusters)[0], momentum)

    @classmethod
    def from_state_dict(cls, state: dict) -> ClusterMemory:
        """Rebuild a memory, cluster count included, from `state_dict()` output (exact restore)."""
        memory = cls(state["centroids"])
        memory.load_state_dict(state)
        return memory

    def get_extra_state(self) -> dict[str, float]:
        """Non-tensor state saved with the buffer: the momentum."""
        return {"momentum": self.momentum}

    def set_extra_state(self, state: dict[str, float]) -> None:
        """Restore what `get_extra_state` saved."""
        self.momentum = float(state["momentum"])

    def __len__(self) -> int:
        """Number of clusters K."""
        return int(self.centroids.shape[0])

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """One momentum step per cluster present in the batch, with the batch mean of its features.

        c_k <- m * c_k + (1 - m) * mean{f_i : y_i = k}, then c_k <- c_k / ||c_k||_2.

        Args:
            features: (B, D) features (detached here); labels: (B,) int64 in 0..K-1.
        """
        momentum_update_rows(self.centroids, labels, features, self.momentum)
