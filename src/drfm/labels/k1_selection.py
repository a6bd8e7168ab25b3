"""Choosing k1 from the data (labels.k1_candidates): the most stable clustering of a k1 scan.

The Jaccard distance's k1 should be near the number of images a person has, which unlabelled data
does not tell: on MLR-iLIDS (4-6 images per person) k1 = 10 clusters best, on a CAVIAR-shaped set
(20 per person) k1 = 20 (README finding 13). A clustering whose k1 is right changes little when k1
moves a step; one whose k1 is too small splits people differently at each step, one whose k1 is too
large merges them differently. So the labelling clusters once per candidate k1 (ascending) and keeps
the interior candidate whose labels agree most with its two neighbours' (mean pairwise F-score of
the two labellings); the first and last candidates serve as neighbours only. Label-free: only the
features are read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from drfm.labels.cluster import outliers_as_singletons
from drfm.labels.cpg import pair_counts, precision_recall_f1

MIN_CANDIDATES = 3
"""A scan needs two ends and at least one interior candidate."""


def labelling_agreement(first: np.ndarray, second: np.ndarray) -> float:
    """Pairwise F-score in [0, 1] between two (N,) int64 labellings of the same images (-1 = left out,
    counted as a cluster of its own): 1 when they group the images identically; symmetric."""
    first_t, second_t = (torch.as_tensor(outliers_as_singletons(labels)) for labels in (first, second))
    true_positive, first_pairs, second_pairs = pair_counts(first_t, second_t)
    return precision_recall_f1(true_positive, first_pairs, second_pairs)[2]


def most_stable(candidates: Sequence[int], cluster: Callable[[int], np.ndarray]) -> tuple[int, np.ndarray, list[float]]:
    """(chosen k1, its (N,) labels, the stability of every interior candidate in order).

    Args:
        candidates: at least MIN_CANDIDATES ascending k1 values.
        cluster: k1 -> (N,) int64 labels (-1 = left out) of the same images.
    """
    if len(candidates) < MIN_CANDIDATES or list(candidates) != sorted(set(candidates)):
        raise ValueError(f"most_stable: need {MIN_CANDIDATES} or more ascending distinct k1 values, got {candidates}")
    labellings = [cluster(k1) for k1 in candidates]
    agreements = [labelling_agreement(a, b) for a, b in zip(labellings, labellings[1:])]
    stability = [(left + right) / 2 for left, right in zip(agreements, agreements[1:])]
    best = 1 + int(np.argmax(stability))
    return int(candidates[best]), labellings[best], stability
