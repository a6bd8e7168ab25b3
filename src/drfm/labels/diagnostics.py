"""Diagnostics of the pseudo-labelling step: one row of figures per labels.* setting, on fixed features.

`drfm labels` extracts the training split's dual features once (E_h of every image's HR view, E_l
of its LR view, as the trainer does at the start of an epoch) and calls `diagnose_grid`, which runs
`drfm.labels.strategy.assign_pseudo_labels` for every point of a grid of labels.* settings and
describes the labels it returns. Everything here is a pure function of (features, settings,
identities): no file, model or dataset is read.

What a row holds, and how to read it
------------------------------------
Counts (as the training log writes them):
- ``num_clusters``: K, the pseudo-identities. Compare with the number of people when known; far
  fewer means people merged, far more means people split.
- ``num_outliers``: images DBSCAN left out of every cluster (labels.mode=cpg: HR images only; dual:
  HR and LR). With labels.outliers=drop they get no label; with singletons each becomes a
  one-image cluster.
- ``N1``, ``N2``: HR and LR training images (N1 + N2 = all of them). ``N1c``: HR images with a label.
- ``T`` (labels.mode=cpg): (N1c / N1) * t, the fraction of LR images CPG labels;
  ``num_labelled_lr``: LR images with a label; ``num_ambiguous``: LR images left to L_ps.
- ``k1``: the k1 the clustering used: labels.k1, or the most stable of labels.k1_candidates
  (`drfm.labels.k1_selection`); None for labels.oracle.
- ``k2``: the k2 of the clustering that made the labels: labels.k2, or scaled to k1 with
  labels.k2_ratio (`drfm.labels.strategy.adapted_k2`); None for labels.oracle.
- ``seconds``: wall-clock time of `assign_pseudo_labels` at this point.

Label-free indicators (readable on data without identities; the features are the same at every
point, so they compare settings with each other, not with other models):
- ``labelled_fraction``: labelled images / all images, in [0, 1]. Higher means more images train,
  but a value near 1 reached by a large eps often comes with merged people (see largest_share).
- ``cluster_sizes``: ``median`` and ``max`` images per cluster, ``largest_share`` = images in the
  largest cluster / all images, ``singletons`` = clusters of one image. A largest_share far above
  1 / (number of people) flags a "giant cluster" that swallowed several people: lower is better
  once the median is near the true images per person; many singletons mean little to contrast.
- ``separation``: in the E_h space (E_h(x_h) of HR images, E_h(x_sh) of LR images; L2-normalised)
  over the labelled images of clusters of two or more: ``own`` = mean cosine similarity of an image
  to its own cluster's centroid computed without it (leave-one-out), ``nearest_other`` = mean cosine
  similarity to the nearest other cluster's centroid, ``margin`` = mean of (own - nearest_other),
  a silhouette-like figure in [-2, 2]: higher is better (compact clusters far from each other);
  near or below 0, images sit as close to another cluster as to their own. ``images``: how many
  images it averages over. ImageNet features have high cosine similarities everywhere, so at epoch
  0 expect small margins; compare points, not absolute values.
- ``mixed_share``: among the images in clusters of two or more, the share whose cluster holds
  both HR and LR images, in [0, 1] (None without such a cluster). Where people are seen at both
  resolutions, higher is better: a low value means the clustering splits people by resolution
  (or by camera, when the LR images come from another camera) and gives L_cc / L_sc few
  cross-resolution positives (`labels.standardize_by`, `labels.color_calibration`).
- ``cpg_agreement`` (labels.mode=cpg): among the labelled LR images, the fraction whose two
  resolutions pick the same cluster: argmax_k s_l (E_l(x_l) against the SLR centroids C_sl) equals
  argmax_k s_sh (E_h(x_sh) against the HR centroids C_h), in [0, 1]. Higher is better: CPG's label
  is then backed by both encoders, not carried by one confident factor of s_lsh.

Quality against the ground truth (``quality``, only when every training image's identity is known;
training never reads them): pairwise precision, recall and F-score (the paper's Figure 6), each in
[0, 1], higher is better. A pair is predicted positive when both images carry the same label >= 0,
truly positive when both show the same person; an unlabelled image's pairs are predicted negative,
so leaving images unlabelled costs recall.
- ``all``: over all pairs of training images (what the training log reports).
- ``hr``: over the pairs of two HR images (the clustering itself, labels.mode=cpg).
- ``lr``: over the pairs with at least one labelled LR image, its partner an HR image or another
  LR image (labelled or not): how right the labels given to LR images are (precision) and how many
  of those images' true partners share their label (recall). 0 when no LR image is labelled.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from drfm.data.views import HR_ORIGIN, LR_ORIGIN
from drfm.labels.cpg import pair_counts, precision_recall_f1
from drfm.labels.strategy import assign_pseudo_labels
from drfm.utils.group_means import normalized_group_means

CHUNK_ROWS = 4096
"""Images per block when comparing features with centroids (bounds memory at CHUNK_ROWS x K)."""


@dataclass(frozen=True)
class GridPoint:
    """One point of the grid: the varied keys' values and the whole labels.* section there."""

    varied: dict[str, Any]   # dotted key ("labels.k1") -> its typed value at this point
    settings: dict           # the configuration's `labels` section at this point


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The Cartesian product of a grid, first key slowest: {"a": ["1", "2"], "b": ["x"]} ->
    [{"a": "1", "b": "x"}, {"a": "2", "b": "x"}]; an empty grid is one point, {}."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def pairwise_quality(labels: np.ndarray, pids: np.ndarray, origin: np.ndarray) -> dict[str, dict[str, float]]:
    """Pairwise precision / recall / F of (N,) labels against (N,) identities (module docstring):
    over all pairs ("all"), over HR-HR pairs ("hr"), and over the pairs that hold a labelled LR
    image ("lr": all pairs minus the pairs of two images that are not labelled LR images)."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    pids = torch.as_tensor(np.asarray(pids, dtype=np.int64))
    hr = torch.as_tensor(origin == HR_ORIGIN)
    others = ~(torch.as_tensor(origin == LR_ORIGIN) & (labels >= 0))
    everything = pair_counts(labels, pids)
    without_lr = pair_counts(labels[others], pids[others])

    def scores(counts) -> dict[str, float]:
        return dict(zip(("precision", "recall", "f1"), precision_recall_f1(*counts)))

    return {"all": scores(everything), "hr": scores(pair_counts(labels[hr], pids[hr])),
            "lr": scores(tuple(a - b for a, b in zip(everything, without_lr)))}


def cluster_size_stats(labels: np.ndarray) -> dict[str, Any]:
    """Sizes of the clusters of (N,) labels (-1 = none): ``median`` (float, None without a
    cluster), ``max`` (images), ``largest_share`` (max / N) and ``singletons`` (clusters of one)."""
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    return {
        "median": float(np.median(sizes)) if sizes.size else None,
        "max": int(sizes.max(initial=0)),
        "largest_share": float(sizes.max(initial=0) / labels.size) if labels.size else 0.0,
        "singletons": int((sizes == 1).sum()),
    }


def separation(features: torch.Tensor, labels: np.ndarray) -> dict[str, Any]:
    """Silhouette-like separation of a labelling (module docstring) over the labelled images of
    clusters of two or more.

    Args:
        features: (N, D) L2-normalised features.
        labels: (N,) int64 clusters (any non-negative ids), -1 = none.

    Returns:
        {"own", "nearest_other", "margin": mean cosine similarities (None when no image qualifies;
        nearest_other and margin also None with fewer than two clusters), "images": how many
        images were averaged}.
    """
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    ids, inverse = torch.unique(labels_t[labels_t >= 0], return_inverse=True)
    if len(ids) == 0:
        return {"own": None, "nearest_other": None, "margin": None, "images": 0}
    groups = torch.full_like(labels_t, -1)
    groups[labels_t >= 0] = inverse
    sums, counts = normalized_group_means(features.float(), groups, len(ids), normalize=False)
    centroids = torch.nn.functional.normalize(sums, dim=1)
    rows = torch.nonzero((groups >= 0) & (counts[groups.clamp_min(0)] >= 2)).flatten()
    own_total, other_total, margin_total = 0.0, 0.0, 0.0
    for block in rows.split(CHUNK_ROWS):
        f, g = features[block].float(), groups[block]
        rest = sums[g] - f
        own = (rest * f).sum(dim=1) / rest.norm(dim=1).clamp_min(1e-12)
        own_total += float(own.sum())
        if len(ids) >= 2:
            similarity = f @ centroids.t()
            similarity[torch.arange(len(block)), g] = -float("inf")
            nearest = similarity.max(dim=1).values
            other_total += float(nearest.sum())
            margin_total += float((own - nearest).sum())
    n = int(rows.numel())
    two = n > 0 and len(ids) >= 2
    return {"own": own_total / n if n else None, "nearest_other": other_total / n if two else None,
            "margin": margin_total / n if two else None, "images": n}


def cpg_agreement(labels: np.ndarray, num_clusters: int, hr: torch.Tensor, lr: torch.Tensor,
                  origin: np.ndarray) -> float | None:
    """Among the labelled LR images, the fraction for which argmax s_l = argmax s_sh (CPG, SPEC step
    5; a softmax keeps the argmax, so the temperatures do not matter).

    Args:
        labels: (N,) int64 labels of labels.mode=cpg: HR images' clusters contiguous
            0..num_clusters-1, -1 = none.
        num_clusters: K.
        hr, lr: (N, D) L2-normalised E_h and E_l features of every image's HR and LR view.
        origin: (N,) HR_ORIGIN / LR_ORIGIN.

    Returns:
        The rate in [0, 1], or None when no LR image is labelled.
    """
    hr_idx = np.flatnonzero(origin == HR_ORIGIN)
    lr_idx = np.flatnonzero((origin == LR_ORIGIN) & (labels >= 0))
    if lr_idx.size == 0 or num_clusters == 0:
        return None
    hr_labels = torch.as_tensor(labels[hr_idx])
    hr_centroids = normalized_group_means(hr[hr_idx].float(), hr_labels, num_clusters)[0]
    slr_centroids = normalized_group_means(lr[hr_idx].float(), hr_labels, num_clusters)[0]
    agree = 0
    for block in torch.as_tensor(lr_idx).split(CHUNK_ROWS):
        by_lr = (lr[block].float() @ slr_centroids.t()).argmax(dim=1)
        by_shr = (hr[block].float() @ hr_centroids.t()).argmax(dim=1)
        agree += int((by_lr == by_shr).sum())
    return agree / lr_idx.size


def diagnose(settings: dict, hr: torch.Tensor, lr: torch.Tensor, origin: np.ndarray,
             pids: np.ndarray | None = None,
             stripes: tuple[torch.Tensor, torch.Tensor] | None = None,
             color: torch.Tensor | None = None) -> dict[str, Any]:
    """The row of one labels.* setting (module docstring): counts, label-free indicators and,
    when every identity is known, the pairwise quality.

    Args:
        settings: a configuration's `labels` section.
        hr, lr: (N, D) L2-normalised E_h and E_l features of every training image's HR and LR view.
        origin: (N,) HR_ORIGIN / LR_ORIGIN.
        pids: (N,) ground-truth identities (-1 unknown) or None.
        stripes: the two views' stripe features when settings["stripes"] > 0 (assign_pseudo_labels).
        color: (N, C) colour histograms when settings["color_weight"] > 0 (assign_pseudo_labels).
    """
    started = time.perf_counter()
    pseudo = assign_pseudo_labels(settings, hr, lr, origin, pids, quality=False, stripes=stripes, color=color)
    seconds = time.perf_counter() - started
    labels, stats = pseudo.labels, pseudo.stats
    is_cpg = settings["mode"] == "cpg" and not settings["oracle"]
    known = pids is not None and len(pids) > 0 and bool((np.asarray(pids) >= 0).all())
    return {
        "num_clusters": int(pseudo.num_clusters),
        "k1": stats["k1"],
        "k2": stats["k2"],
        "num_outliers": int(stats["num_outliers"]),
        "N1": int(stats["N1"]),
        "N2": int(stats["N2"]),
        "N1c": int(stats["N1c"]),
        "T": float(stats["T"]) if "T" in stats else None,
        "num_labelled_lr": int(stats["num_labelled_lr"]),
        "num_ambiguous": int(stats["num_ambiguous"]),
        "labelled_fraction": float((labels >= 0).mean()) if labels.size else 0.0,
        "cluster_sizes": cluster_size_stats(labels),
        "separation": separation(hr, labels),
        "mixed_share": stats["mixed_share"],
        "cpg_agreement": cpg_agreement(labels, pseudo.num_clusters, hr, lr, origin) if is_cpg else None,
        "quality": pairwise_quality(labels, np.asarray(pids), origin) if known else None,
        "seconds": seconds,
    }


def diagnose_grid(points: list[GridPoint], hr: torch.Tensor, lr: torch.Tensor, origin: np.ndarray,
                  pids: np.ndarray | None = None,
                  stripes: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
                  colors: dict[str, torch.Tensor] | None = None) -> list[dict[str, Any]]:
    """One row per grid point, in order: {"settings": the point's varied keys, **diagnose(...)}.
    Arguments as `diagnose`; the features are shared by every point, `stripes` maps each
    labels.stripes value > 0 of the grid to its stripe features, `colors` each
    labels.color_calibration of the points with labels.color_weight > 0 to its colour histograms."""
    stripes, colors = stripes or {}, colors or {}
    return [{"settings": dict(point.varied),
             **diagnose(point.settings, hr, lr, origin, pids, stripes.get(point.settings["stripes"]),
                        colors.get(point.settings["color_calibration"]))}
            for point in points]
