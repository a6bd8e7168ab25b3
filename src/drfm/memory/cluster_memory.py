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

from drfm.losses.single_centroid import single_centroid_contrastive_loss
from drfm.memory.memories import momentum_update_rows, normalized_group_means


class ClusterMemory(nn.Module):
    """K L2-normalised cluster centroids (buffer `centroids`, (K, D)) with a contrastive loss."""

    def __init__(self, centroids: Tensor, momentum: float = 0.1, temperature: float = 0.05) -> None:
        """Hold `centroids` (K, D) (L2-normalised here, a detached copy).

        Args:
            centroids: (K, D) initial centroids.
            momentum: m in [0, 1], the weight the old centroid keeps in `update` (0.1).
            temperature: tau > 0 of the loss (0.05).
        """
        super().__init__()
        if centroids.dim() != 2:
            raise ValueError(f"ClusterMemory: centroids must be (K, D), got {tuple(centroids.shape)}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"ClusterMemory: momentum must be in [0, 1], got {momentum}")
        if temperature <= 0:
            raise ValueError(f"ClusterMemory: temperature must be > 0, got {temperature}")
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.register_buffer("centroids", F.normalize(centroids.detach().float(), dim=1).clone())

    @classmethod
    def from_features(
        cls, features: Tensor, labels: Tensor, num_clusters: int, momentum: float = 0.1, temperature: float = 0.05
    ) -> ClusterMemory:
        """Initialise from one epoch's features (N, D) and labels (N,) (-1 ignored): cluster means."""
        return cls(normalized_group_means(features, labels, num_clusters)[0], momentum, temperature)

    @classmethod
    def from_state_dict(cls, state: dict) -> ClusterMemory:
        """Rebuild a memory, cluster count included, from `state_dict()` output (exact restore)."""
        memory = cls(state["centroids"])
        memory.load_state_dict(state)
        return memory

    def get_extra_state(self) -> dict[str, float]:
        """Non-tensor state saved with the buffer: momentum and temperature."""
        return {"momentum": self.momentum, "temperature": self.temperature}

    def set_extra_state(self, state: dict[str, float]) -> None:
        """Restore what `get_extra_state` saved."""
        self.momentum = float(state["momentum"])
        self.temperature = float(state["temperature"])

    def __len__(self) -> int:
        """Number of clusters K."""
        return int(self.centroids.shape[0])

    def loss(self, features: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy of features . centroids^T / temperature (see `single_centroid_contrastive_loss`).

        Args:
            features: (B, D) L2-normalised features; labels: (B,) int64 in 0..K-1.
        """
        return single_centroid_contrastive_loss(features, labels, self.centroids, self.temperature)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """One momentum step per cluster present in the batch, with the batch mean of its features.

        c_k <- m * c_k + (1 - m) * mean{f_i : y_i = k}, then c_k <- c_k / ||c_k||_2.

        Args:
            features: (B, D) features (detached here); labels: (B,) int64 in 0..K-1.
        """
        momentum_update_rows(self.centroids, labels, features, self.momentum)
