"""P x K batches by pseudo-identity, drawn from a seeded NumPy generator."""

from __future__ import annotations

import numpy as np


def pk_batches(labels: np.ndarray, batch_size: int, instances: int, num_batches: int,
               rng: np.random.Generator) -> np.ndarray:
    """Index batches of `batch_size` samples: P = batch_size // instances clusters x K = instances.

    `labels` (N,) holds a cluster id per sample, -1 for samples that take no part. Each batch draws
    P distinct clusters (with replacement only when fewer than P exist), then K samples of each
    cluster, distinct unless the cluster has fewer than K members. Returns (num_batches, P * K)
    int64 sample indices. Raises ValueError when no sample has a label.
    """
    labelled = np.flatnonzero(labels >= 0)
    if labelled.size == 0:
        raise ValueError("no labelled sample to draw a batch from")
    order = labelled[np.argsort(labels[labelled], kind="stable")]
    clusters, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
    num_ids = max(1, batch_size // instances)
    batches = np.empty((num_batches, num_ids * instances), dtype=np.int64)
    for b in range(num_batches):
        chosen = rng.choice(clusters.size, num_ids, replace=clusters.size < num_ids)
        # Random keys per member; the K smallest keys of a cluster are a uniform draw without
        # replacement. Clusters smaller than K repeat their members cyclically in random order.
        picks = []
        for c in chosen:
            members = order[starts[c]:starts[c] + sizes[c]]
            perm = members[rng.permutation(members.size)]
            picks.append(np.resize(perm, instances))
        batches[b] = np.concatenate(picks)
    return batches


def with_ambiguous(batches: np.ndarray, ambiguous: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(num_batches, B + size): every row of `batches` (num_batches, B) followed by `size` indices
    drawn from `ambiguous` (distinct unless fewer than `size` exist), one draw per batch in order."""
    extra = [rng.choice(ambiguous, size, replace=ambiguous.size < size) for _ in range(len(batches))]
    return np.concatenate([batches, np.stack(extra)], axis=1)
