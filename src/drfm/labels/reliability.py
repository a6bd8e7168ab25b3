"""Self-paced cluster reliability (SpCL, Ge et al. 2020): keep the clusters that stay the same when
DBSCAN's radius moves a little, drop the rest (labels.reliability_delta).

A cluster that merges two people usually joins a third group as soon as eps grows (it is not
*independent* of its neighbours), and a member that sits between two people falls out of it as soon
as eps shrinks (the cluster is not *compact* around it). With the same Jaccard distances clustered
at eps - delta (tight) and eps + delta (loose):

- independence of a cluster C: the smallest, over C's members i, intersection-over-union of C with
  the loose cluster of i;
- compactness of a member i: the intersection-over-union of C with the tight cluster of i (an
  outlier at the tight radius is a cluster of its own).

A cluster whose independence is below `min_independence` loses every member; a member whose
compactness is below `min_compactness` loses its label; a cluster left with one member loses it
too. Dropped images are outliers (label -1), as DBSCAN's own. Label-free: only the distances are read.
On the development sets it raised label F but not Rank-1 (README finding 20), so no preset sets it.
"""

from __future__ import annotations

import numpy as np
import torch

from drfm.labels.cluster import dbscan_labels, outliers_as_singletons
from drfm.labels.cpg import relabel_contiguous
from drfm.labels.jaccard import jaccard_distance


def member_iou(labels: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(N,) float: for every image i, |A ∩ B| / |A ∪ B| of its cluster A under (N,) int64 `labels`
    and its cluster B under (N,) int64 `other` (-1 = outlier, a cluster of its own in either)."""
    first, second = outliers_as_singletons(labels), outliers_as_singletons(other)
    _, first_index, first_sizes = np.unique(first, return_inverse=True, return_counts=True)
    _, second_index, second_sizes = np.unique(second, return_inverse=True, return_counts=True)
    _, joint_index, joint_sizes = np.unique(first_index * len(second_sizes) + second_index,
                                            return_inverse=True, return_counts=True)
    shared = joint_sizes[joint_index]
    return shared / (first_sizes[first_index] + second_sizes[second_index] - shared)


def reliable_labels(labels: np.ndarray, tight: np.ndarray, loose: np.ndarray,
                    min_independence: float, min_compactness: float) -> np.ndarray:
    """(N,) int64 labels 0..C'-1 (-1 = dropped or outlier): `labels` without the unreliable clusters
    and members (module docstring), from the (N,) int64 DBSCAN labels of the same distances at eps,
    eps - delta (`tight`) and eps + delta (`loose`); thresholds in [0, 1]."""
    labels = np.asarray(labels, dtype=np.int64)
    kept = labels.copy()
    clustered = labels >= 0
    if not clustered.any():
        return kept
    independence = np.ones(int(labels.max()) + 1)
    np.minimum.at(independence, labels[clustered], member_iou(labels, loose)[clustered])
    drop = clustered & ((independence[np.maximum(labels, 0)] < min_independence)
                        | (member_iou(labels, tight) < min_compactness))
    kept[drop] = -1
    sizes = np.bincount(kept[kept >= 0], minlength=independence.size)
    kept[(kept >= 0) & (sizes[np.maximum(kept, 0)] < 2)] = -1
    return relabel_contiguous(torch.as_tensor(kept)).numpy()


def cluster_reliably(features: torch.Tensor, k1: int, k2: int, eps: float, min_samples: int, delta: float,
                     min_independence: float, min_compactness: float, *,
                     neighbours: tuple[torch.Tensor, torch.Tensor] | None = None,
                     timings: dict[str, float] | None = None) -> np.ndarray:
    """(N,) int64 labels (-1 outliers) of L2-normalised (N, D) features: `drfm.labels.cluster.
    cluster_features` at eps, then `reliable_labels` against the same Jaccard distances clustered
    at eps -/+ delta (kept inside (0, 1)); other arguments as cluster_features."""
    stages = timings if timings is not None else {}
    distances = jaccard_distance(features, k1, k2, neighbours=neighbours, timings=stages)
    labels = dbscan_labels(distances, eps, min_samples, stages)
    tight = dbscan_labels(distances, max(eps - delta, 1e-6), min_samples, stages)
    loose = dbscan_labels(distances, min(eps + delta, 1 - 1e-6), min_samples, stages)
    return reliable_labels(labels, tight, loose, min_independence, min_compactness)
