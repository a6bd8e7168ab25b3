"""One epoch's pseudo-labels over every training image, as `labels.*` of the configuration asks.

labels.mode chooses what is clustered and how LR images get labels:
- ``cpg`` (DRFM, A3-A6, A8): cluster the HR images' E_h features; SLR twins share their HR image's
  label; CPG labels the most confident LR images (and SHR twins); the rest are ambiguous (L_ps).
- ``dual``: cluster every image (HR and LR) on both encoders' features of its two views,
  [E_h(HR view), E_l(LR view)] (each part L2-normalised): E_h(x_h) with E_l(x_sl) for an HR image,
  E_h(x_sh) with E_l(x_l) for an LR image, what the fused test feature is made of. LR images the
  clustering leaves out are the ambiguous ones (L_ps).
- ``joint`` (A1): cluster E_h(x_h) together with E_l(x_l).
- ``sr`` (A2, A7): cluster E_h(x_h) together with E_h(x_sh) (the SR twin of each LR image).
- ``all`` (Cluster Contrast): cluster every image with the single encoder.
``labels.oracle`` replaces all of this by the ground-truth training identities (a diagnostic).
Clustering is `drfm.labels.cluster.cluster_features` with the labels.* settings; with
labels.color_weight > 0 each clustered row also carries its image's stripe colour histogram
(`drfm.labels.color`), weighted against the network features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from drfm.config_schema import LABEL_MODES_WITH_AMBIGUOUS_LR
from drfm.data.records import DatasetSplits
from drfm.data.views import HR_ORIGIN, LR_ORIGIN
from drfm.errors import DrfmError
from drfm.labels.cluster import cluster_features, outliers_as_singletons
from drfm.labels.cpg import cross_resolution_pseudo_labels, pairwise_precision_recall_f1, relabel_contiguous
from drfm.labels.k1_selection import MIN_CANDIDATES, most_stable
from drfm.labels.knn import knn
from drfm.labels.reliability import cluster_reliably


@dataclass
class PseudoLabels:
    """One epoch's labels over all training images (-1: none) and the statistics SPEC asks for."""

    labels: np.ndarray        # (N,) int64, cluster 0..num_clusters-1 or -1
    ambiguous: np.ndarray     # (A,) indices of LR images left to L_ps (labels.mode=cpg)
    num_clusters: int
    stats: dict               # num_clusters, k1 and k2 (the ones used), N1, N2, N1c, num_labelled_lr, num_ambiguous,
                              # num_outliers, mixed_share, T (cpg), cluster_seconds, label_quality (when ids
                              # are known)


def standardized(features: torch.Tensor, groups: np.ndarray | None = None) -> torch.Tensor:
    """(N, D) features with every dimension z-scored over the N rows, then rows L2-normalised:
    removes what all images share (the "person" direction of ImageNet features). With (N,) integer
    `groups`, each group's rows are z-scored over that group alone (a group of one row is only
    centred), which also removes what sets one group apart (a camera's colour cast, the offset of
    super-resolved LR pictures from real HR ones)."""
    if groups is None:
        groups = np.zeros(len(features), dtype=np.int64)
    out = torch.empty_like(features)
    for group in np.unique(groups):
        rows = torch.as_tensor(np.flatnonzero(groups == group))
        centred = features[rows] - features[rows].mean(dim=0, keepdim=True)
        spread = centred.std(dim=0, keepdim=True) if len(rows) > 1 else torch.ones_like(centred)
        out[rows] = centred / (spread + 1e-6)
    return F.normalize(out, dim=1)


def cluster_with_settings(features: torch.Tensor, settings: dict, timings: dict | None = None,
                          color: torch.Tensor | None = None,
                          origin: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """((N,) int64 cluster labels, number of DBSCAN outliers, the k1 used) of L2-normalised (N, D)
    features under the labels.* settings: k1, k2 (`adapted_k2` with `k2_ratio`), eps, min_samples of
    the Jaccard + DBSCAN step,
    `k1_candidates` (the most stable k1 of these, `drfm.labels.k1_selection`, when three or more of
    them are at most N, from one kNN search at the largest; else k1; `timings` then sums each
    stage's seconds over the scan),
    `standardize` (z-score the features first: over all rows, or with `standardize_by: resolution`
    over the HR rows and the LR rows apart, as the (N,) `origin` of the rows says), `color_weight`
    (> 0: join the (N, C) unit `color` histograms of the same rows, each part standardised or
    L2-normalised as the features are, the histograms scaled by the weight, every row
    L2-normalised again), `reliability_delta` (a number: only the clusters and members that
    `drfm.labels.reliability` finds reliable at min_independence / min_compactness keep their labels)
    and `outliers` (drop: label -1;
    singletons: each outlier becomes a cluster of its own, numbered after the DBSCAN clusters)."""
    standardize = settings["standardize"] and len(features) > 1
    groups = origin if settings["standardize_by"] == "resolution" else None
    if standardize:
        features = standardized(features, groups)
    if settings["color_weight"] > 0:
        if color is None or len(color) != len(features):
            raise DrfmError("labels.color_weight > 0 needs the colour histogram of every clustered image")
        color = standardized(color, groups) if standardize else F.normalize(color, dim=1)
        features = F.normalize(torch.cat([features, settings["color_weight"] * color], dim=1), dim=1)

    candidates = [k1 for k1 in settings["k1_candidates"] if k1 <= len(features)]
    neighbours = None
    if len(candidates) >= MIN_CANDIDATES:
        started = time.perf_counter()
        neighbours = knn(features, max(candidates))
        if timings is not None:
            timings["knn"] = timings.get("knn", 0.0) + time.perf_counter() - started

    def cluster(k1: int, k2: int = settings["k2"]) -> np.ndarray:
        return relabel_contiguous(torch.as_tensor(cluster_features(
            features, k1=k1, k2=k2, eps=settings["eps"], min_samples=settings["min_samples"],
            neighbours=neighbours, timings=timings))).numpy()

    k1, labels = settings["k1"], None
    if neighbours is not None:
        k1, labels, _ = most_stable(candidates, cluster)
    k2 = adapted_k2(settings, k1)
    if settings["reliability_delta"] is not None:
        labels = cluster_reliably(features, k1, k2, settings["eps"], settings["min_samples"],
                                  settings["reliability_delta"], settings["min_independence"],
                                  settings["min_compactness"], neighbours=neighbours, timings=timings)
    elif labels is None or k2 != settings["k2"]:
        labels = cluster(k1, k2)
    num_outliers = int((labels < 0).sum())
    if settings["outliers"] == "singletons":
        labels = outliers_as_singletons(labels)
    return labels, num_outliers, k1


def adapted_k2(settings: dict, k1: int) -> int:
    """The k2 of the clustering that makes the labels at this k1: labels.k2, or with labels.k2_ratio
    r, max(labels.k2, round(r * k1)) (at most k1), which keeps the paper's k2 / k1 = 6 / 30 when k1
    comes from the data (README finding 19)."""
    if settings["k2_ratio"] is None:
        return settings["k2"]
    return min(k1, max(settings["k2"], round(settings["k2_ratio"] * k1)))


def mixed_share(labels: np.ndarray, origin: np.ndarray) -> float | None:
    """Share of the images in clusters of two or more whose cluster holds both HR and LR images, in
    [0, 1] (None without such a cluster; `drfm.labels.diagnostics` says how to read it), from (N,)
    labels (-1 = none) and (N,) HR_ORIGIN / LR_ORIGIN."""
    labelled = labels >= 0
    if not labelled.any():
        return None
    sizes = np.bincount(labels[labelled])
    lr_counts = np.bincount(labels[labelled], weights=(origin[labelled] == LR_ORIGIN).astype(float),
                            minlength=sizes.size)
    in_groups = sizes >= 2
    mixed = in_groups & (lr_counts > 0) & (lr_counts < sizes)
    total = int(sizes[in_groups].sum())
    return float(sizes[mixed].sum() / total) if total else None


def assign_pseudo_labels(settings: dict, hr: torch.Tensor, lr: torch.Tensor, origin: np.ndarray,
                         pids: np.ndarray | None = None, quality: bool = True,
                         stripes: tuple[torch.Tensor, torch.Tensor] | None = None,
                         color: torch.Tensor | None = None) -> PseudoLabels:
    """Pseudo-labels of N training images from their features.

    Args:
        settings: the configuration's `labels` section.
        hr, lr: (N, D) L2-normalised E_h and E_l features of every image's HR and LR view.
        origin: (N,) HR_ORIGIN / LR_ORIGIN of every image.
        stripes: the stripe features (N, S * C) of the same two views (labels.stripes > 0): then
            these are clustered instead of `hr`/`lr`; CPG's centroids still use `hr`/`lr`.
        color: (N, C) colour histograms of every image's own file (`drfm.labels.color`), needed
            when labels.color_weight > 0: joined to the clustered features of the same images.
        pids: (N,) ground-truth identities (-1 unknown) or None; read only by labels.oracle and,
            when `quality`, to log pairwise precision / recall / F-score (never by the labels).
    """
    hr_idx, lr_idx = np.flatnonzero(origin == HR_ORIGIN), np.flatnonzero(origin == LR_ORIGIN)
    hr_clustered, lr_clustered = stripes if stripes is not None else (hr, lr)
    labels = np.full(len(origin), -1, dtype=np.int64)
    stats: dict = {}
    timings: dict = {}
    started = time.perf_counter()
    if settings["oracle"]:
        if pids is None or (pids < 0).any():
            raise DrfmError("labels.oracle needs ground-truth ids for every training image")
        labels = relabel_contiguous(torch.as_tensor(pids)).numpy()
        num_clusters = int(labels.max()) + 1
        stats.update(oracle=True)
        num_outliers, k1 = 0, None
    elif settings["mode"] == "cpg":
        hr_labels, num_outliers, k1 = cluster_with_settings(hr_clustered[hr_idx], settings, timings,
                                                        rows_of(color, hr_idx))
        hr_labels = torch.as_tensor(hr_labels)
        cpg = cross_resolution_pseudo_labels(hr_labels, hr[hr_idx], lr[hr_idx], lr[lr_idx], hr[lr_idx],
                                             t=settings["t"], tau_l=settings["tau_l"], tau_h=settings["tau_h"])
        labels[hr_idx] = cpg.hr_labels.numpy()
        labels[lr_idx] = cpg.lr_labels.numpy()
        num_clusters = cpg.num_clusters
        stats.update(T=cpg.t_fraction)
    elif settings["mode"] == "dual":
        both_views = torch.cat([F.normalize(hr_clustered, dim=1), F.normalize(lr_clustered, dim=1)], dim=1)
        labels, num_outliers, k1 = cluster_with_settings(F.normalize(both_views, dim=1), settings, timings, color,
                                                         origin)
        num_clusters = int(labels.max()) + 1 if len(labels) else 0
    else:
        lr_members = (lr_clustered if settings["mode"] == "joint" else hr_clustered)[lr_idx]  # sr, all: E_h
        order = np.concatenate([hr_idx, lr_idx])
        clustered, num_outliers, k1 = cluster_with_settings(torch.cat([hr_clustered[hr_idx], lr_members]), settings,
                                                        timings, rows_of(color, order), origin[order])
        labels[order] = clustered
        num_clusters = int(clustered.max()) + 1 if len(clustered) else 0
    ambiguous = lr_idx[labels[lr_idx] < 0] \
        if settings["mode"] in LABEL_MODES_WITH_AMBIGUOUS_LR and not settings["oracle"] else np.empty(0, dtype=np.int64)
    timings["total"] = time.perf_counter() - started
    stats.update(num_clusters=num_clusters, k1=k1, k2=None if k1 is None else adapted_k2(settings, k1),
                 N1=int(hr_idx.size), N2=int(lr_idx.size), N1c=int((labels[hr_idx] >= 0).sum()),
                 num_labelled_lr=int((labels[lr_idx] >= 0).sum()), num_ambiguous=int(ambiguous.size),
                 num_outliers=num_outliers,
                 mixed_share=mixed_share(labels, origin), cluster_seconds={k: round(v, 3) for k, v in timings.items()})
    if quality and pids is not None and (pids >= 0).all():
        stats["label_quality"] = label_quality(labels, pids)
    return PseudoLabels(labels, ambiguous, num_clusters, stats)


def rows_of(features: torch.Tensor | None, rows: np.ndarray) -> torch.Tensor | None:
    """features[rows], or None without features."""
    return None if features is None else features[torch.as_tensor(rows)]


def label_quality(labels: np.ndarray, pids: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F-score (the paper's Figure 6) of (N,) labels against (N,) ids."""
    precision, recall, f1 = pairwise_precision_recall_f1(torch.as_tensor(labels), torch.as_tensor(pids))
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def clustered_rows(mode: str, num_hr: int, num_lr: int) -> tuple[int, str]:
    """How many feature rows one epoch clusters under labels.mode, and which ones (for messages)."""
    if mode == "cpg":
        return num_hr, "HR training images"
    return num_hr + num_lr, "training images (HR and LR)"


def check_label_settings(config: dict, splits: DatasetSplits) -> None:
    """DrfmError naming the labels.* key when the clustering settings cannot work on this
    dataset's training split (e.g. labels.k1 larger than the number of images clustered)."""
    labels = config["labels"]
    if labels["oracle"]:
        return
    is_lr = splits.low_resolution_mask(splits.train)
    rows, what = clustered_rows(labels["mode"], int((~is_lr).sum()), int(is_lr.sum()))
    where = f"{splits.root}: dataset '{splits.name}'"
    if rows == 0:
        raise DrfmError(f"{where} has no {what} to cluster (labels.mode={labels['mode']})")
    if labels["k1"] > rows:
        raise DrfmError(f"{where} has {rows} {what} to cluster, fewer than labels.k1={labels['k1']}; "
                        f"set labels.k1 to at most {rows} (and labels.k2 <= labels.k1)")
