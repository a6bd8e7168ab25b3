"""DRFM's instance memories M_hh, M_ll, M_fu and their resolution centroids (SPEC "Memories and
resolution centroids").

A memory holds one L2-normalised slot per labelled feature of one space, its cluster label and its
origin (0 = the sample comes from an HR image: f_h, f_sl, f_hsl; 1 = from an LR image: f_sh, f_l,
f_lsh). It is filled at the start of an epoch and updated after every step with
v <- alpha * v + (1 - alpha) * f, then L2-normalised (alpha = 0.2: the old slot keeps weight 0.2).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drfm.utils.group_means import normalized_group_means

NUM_ORIGINS = 2
"""Origins of a sample: 0 = from an HR image, 1 = from an LR image."""


@torch.no_grad()
def momentum_update_rows(bank: Tensor, rows: Tensor, features: Tensor, momentum: float) -> tuple[Tensor, Tensor]:
    """In place: bank[r] <- normalize(momentum * bank[r] + (1 - momentum) * mean{features[i] : rows[i] = r}).

    Each distinct row takes ONE step with the mean of its batch features, so the result does not
    depend on the batch order; without repeated rows this is the per-sample rule exactly.

    Args:
        bank: (R, D) float buffer, modified in place.
        rows: (B,) int64 row indices in 0..R-1 (repeats allowed).
        features: (B, D) new features (detached here).
        momentum: the weight the old row keeps, in [0, 1].

    Returns:
        touched: (U,) the distinct rows updated; change: (U, D) their new value minus their old one.
    """
    if rows.shape != (features.shape[0],) or features.dim() != 2:
        raise ValueError(
            f"momentum update: need rows (B,) and features (B, D); got {tuple(rows.shape)}, {tuple(features.shape)}"
        )
    touched, inverse = torch.unique(rows, return_inverse=True)
    batch_mean = bank.new_zeros((touched.shape[0], features.shape[1]))
    batch_mean.index_add_(0, inverse, features.detach().to(bank.dtype))
    batch_mean /= torch.bincount(inverse, minlength=touched.shape[0]).unsqueeze(1).to(bank.dtype)
    old = bank[touched]
    new = F.normalize(momentum * old + (1.0 - momentum) * batch_mean, dim=1)
    bank[touched] = new
    return touched, new - old


class InstanceMemory(nn.Module):
    """The memory of one feature space: M slots of dimension D, with labels and origins.

    Buffers saved by `state_dict()`: `features` (M, D) float32 L2-normalised, `labels` (M,) int64
    (-1 = no cluster; such slots never enter a centroid), `origins` (M,) int64 in {0, 1}, and
    `group_sums` (2 * K0, D): the sum of the slots of every (cluster j, origin o) at row 2j + o,
    K0 = max label + 1. `update` keeps `group_sums` current by adding each slot's change, so the
    centroids cost O(K D) per step instead of a pass over all M slots; they equal a fresh
    recomputation up to float32 rounding. The momentum travels in the state dict's extra state.
    Since M changes from epoch to epoch, restore a checkpoint with
    `InstanceMemory.from_state_dict(state)` (or `load_state_dict` on a memory of the same size).
    """

    def __init__(self, features: Tensor, labels: Tensor, origins: Tensor, momentum: float = 0.2) -> None:
        """Fill the memory with one epoch's features.

        Args:
            features: (M, D) features, L2-normalised here (a copy, detached).
            labels: (M,) int64 cluster labels, -1 = none.
            origins: (M,) int64, 0 = from an HR image, 1 = from an LR image.
            momentum: alpha, the weight the old slot keeps in `update`, in [0, 1].
        """
        super().__init__()
        if features.dim() != 2 or labels.shape != (features.shape[0],) or origins.shape != labels.shape:
            raise ValueError(
                f"InstanceMemory: need features (M, D), labels (M,), origins (M,); got "
                f"{tuple(features.shape)}, {tuple(labels.shape)}, {tuple(origins.shape)}"
            )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"InstanceMemory: momentum must be in [0, 1], got {momentum}")
        if origins.numel() and not bool(((origins == 0) | (origins == 1)).all()):
            raise ValueError("InstanceMemory: origins must be 0 (HR image) or 1 (LR image)")
        self.momentum = float(momentum)
        labels = labels.detach().long()
        origins = origins.detach().long()
        features = F.normalize(features.detach().float(), dim=1)
        groups = torch.where(labels >= 0, labels * NUM_ORIGINS + origins, -1)
        num_groups = (int(labels.max()) + 1) * NUM_ORIGINS if labels.numel() else 0
        sums, counts = normalized_group_means(features, groups, num_groups, normalize=False)
        self.register_buffer("features", features)
        self.register_buffer("labels", labels.clone())
        self.register_buffer("origins", origins.clone())
        self.register_buffer("group_sums", sums)
        self.register_buffer("groups", groups, persistent=False)
        self.register_buffer("group_counts", counts, persistent=False)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> InstanceMemory:
        """Rebuild a memory, slot count included, from `state_dict()` output (exact restore)."""
        memory = cls(state["features"], state["labels"], state["origins"])
        memory.load_state_dict(state)
        return memory

    def get_extra_state(self) -> dict[str, float]:
        """Non-tensor state saved with the buffers: the momentum."""
        return {"momentum": self.momentum}

    def set_extra_state(self, state: dict[str, float]) -> None:
        """Restore the momentum saved by `get_extra_state`."""
        self.momentum = float(state["momentum"])

    def __len__(self) -> int:
        """Number of slots M."""
        return int(self.features.shape[0])

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor) -> None:
        """Momentum update of the slots `indices` with the batch `features`.

        v <- alpha * v + (1 - alpha) * f, then v <- v / ||v||_2, with alpha = `self.momentum`.
        A slot that appears several times in one batch is updated ONCE with the mean of its batch
        features as f (see `momentum_update_rows`).

        Args:
            indices: (B,) int64 slot indices in 0..M-1.
            features: (B, D) new features (detached here).
        """
        touched, change = momentum_update_rows(self.features, indices, features, self.momentum)
        groups = self.groups[touched]
        labelled = groups >= 0
        self.group_sums.index_add_(0, groups[labelled], change[labelled])

    def _group_sums_and_counts(self, num_clusters: int) -> tuple[Tensor, Tensor]:
        """(K, 2, D) slot sums and (K, 2) slot counts per cluster and origin, zero-padded to K."""
        known = self.group_sums.shape[0] // NUM_ORIGINS
        if known > num_clusters:
            raise ValueError(f"InstanceMemory: a slot has label {known - 1} but num_clusters is {num_clusters}")
        padding = (num_clusters - known) * NUM_ORIGINS
        sums = F.pad(self.group_sums, (0, 0, 0, padding))
        counts = F.pad(self.group_counts, (0, padding))
        return sums.view(num_clusters, NUM_ORIGINS, -1), counts.view(num_clusters, NUM_ORIGINS)

    @torch.no_grad()
    def resolution_centroids(self, num_clusters: int) -> tuple[Tensor, Tensor]:
        """Per cluster and origin, the L2-normalised mean of the slots with that label and origin.

        Returns:
            centroids: (K, 2, D); centroids[j, o] = normalised mean of the slots of cluster j with
                origin o (a zero row where there is none);
            present: (K, 2) bool, True where cluster j has at least one slot of origin o.
        """
        sums, counts = self._group_sums_and_counts(num_clusters)
        return F.normalize(sums, dim=2), counts > 0

    @torch.no_grad()
    def cluster_centroids(self, num_clusters: int) -> Tensor:
        """(K, D) L2-normalised mean of all slots of each cluster, both origins together (for L_sc).

        A cluster without slots gets a zero row.
        """
        sums, _ = self._group_sums_and_counts(num_clusters)
        return F.normalize(sums.sum(dim=1), dim=1)
