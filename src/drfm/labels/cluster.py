"""Pseudo-labels: DBSCAN over the sparse k-reciprocal Jaccard distance of feature rows."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse
import torch
from sklearn.cluster import DBSCAN

from drfm.errors import DrfmError
from drfm.labels.jaccard import jaccard_distance


def cluster_features(
    features: torch.Tensor,
    k1: int = 30,
    k2: int = 6,
    eps: float = 0.6,
    min_samples: int = 4,
    *,
    chunk_size: int | None = None,
    faiss_ok: bool = True,
    neighbours: tuple[torch.Tensor, torch.Tensor] | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Cluster L2-normalised feature rows; the cluster-contrast recipe in O(N * k) memory.

    Jaccard distance (see ``drfm.labels.jaccard.jaccard_distance``), then sklearn DBSCAN with
    ``metric="precomputed"`` on the sparse matrix: pairs that are not stored have distance 1,
    which is never a neighbour because eps < 1, exactly as in the dense computation.

    Args:
        features: (N, D) floating tensor, rows L2-normalised.
        k1, k2: k-reciprocal and query-expansion neighbourhood sizes (self included).
        eps: DBSCAN radius on the Jaccard distance, 0 < eps < 1.
        min_samples: DBSCAN core-point threshold (the point itself counted), >= 1.
        chunk_size, faiss_ok: passed to the kNN search (see ``drfm.labels.knn.knn``).
        neighbours: the features' kNN lists with k1 or more columns, reused instead of a search
            (see ``drfm.labels.jaccard.jaccard_distance``).
        timings: if given, seconds per stage are added to it (a stage not yet in it starts at 0):
            knn, reciprocal, expansion, query_expansion, jaccard, dbscan.

    Returns:
        (N,) int64 labels 0..C-1, -1 for outliers.
    """
    if not 0.0 < eps < 1.0:
        raise DrfmError(f"eps: expected 0 < eps < 1 for a Jaccard distance, got {eps!r}")
    if not isinstance(min_samples, int) or min_samples < 1:
        raise DrfmError(f"min_samples: expected a positive integer, got {min_samples!r}")
    stages = timings if timings is not None else {}
    distances = jaccard_distance(features, k1, k2, chunk_size=chunk_size, faiss_ok=faiss_ok,
                                 neighbours=neighbours, timings=stages)
    return dbscan_labels(distances, eps, min_samples, stages)


def dbscan_labels(distances: scipy.sparse.csr_matrix, eps: float, min_samples: int,
                  timings: dict[str, float]) -> np.ndarray:
    """(N,) int64 DBSCAN labels (-1 outliers) of a sparse (N, N) precomputed distance matrix whose
    missing entries are never neighbours; adds the seconds to timings["dbscan"]."""
    start = time.perf_counter()
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(distances)
    timings["dbscan"] = timings.get("dbscan", 0.0) + time.perf_counter() - start
    return labels.astype(np.int64)


def outliers_as_singletons(labels: np.ndarray) -> np.ndarray:
    """A copy of (N,) int64 labels with every outlier (-1) made a cluster of its own, numbered
    after the largest label."""
    labels = np.array(labels, dtype=np.int64)
    outliers = labels < 0
    labels[outliers] = labels.max(initial=-1) + 1 + np.arange(int(outliers.sum()))
    return labels
