"""Cross-resolution re-ID evaluation: cosine distance, CMC, mAP, mINP, single- and multi-shot protocols.

Ranking. For one query, gallery image j comes before gallery image k when its distance is smaller,
or when the distances are equal and j < k (a stable sort by distance, then by gallery index).
Distances are compared as float32. The rank of a gallery image is 1 + the number of kept gallery
images before it; "junk" images (multi-shot: same identity and same known camera as the query,
:func:`same_camera_junk`) are not kept: they neither count as positives nor push positives down.
:func:`rank_gallery` lists gallery images in this order (what `drfm evaluate --visualize` and
`drfm search` draw); :func:`rank_metrics` counts the same ranks without sorting.

Metrics, for a query with P > 0 positives (kept gallery images of its identity) at ranks
r_1 < ... < r_P:

- CMC@k = 1 if r_1 <= k, else 0.
- AP = (1/P) * sum_i i / r_i, the mean over positives of the precision at each positive's rank
  (the standard Market-1501 definition, the area under the non-interpolated precision-recall curve).
- INP = P / r_P, the inverse of the rank of the hardest positive, normalised by the number of
  positives (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
  TPAMI 2021, "mINP").

CMC, mAP and mINP average these over the valid queries; a query with no positive is excluded and
counted. With exactly one positive per query (single-shot), AP = INP = 1 / r_1, so mAP = mINP.

Identities below 0 are unknown (distractors): they never match, not even each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drfm.errors import DrfmError, OptionError, option
from drfm.evaluation.features_file import FeatureSet

PROTOCOLS = ("single-shot", "multi-shot")
MAX_RANK = 10
# Upper bound on the elements of one (pairs x gallery) comparison block in rank_metrics.
BLOCK_ELEMENTS = 1 << 22


def cosine_distance(query_feats: np.ndarray, gallery_feats: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between every query and gallery row: (Q, D), (G, D) -> (Q, G) float32.

    Rows are L2-normalised here (a zero row has distance 1 to everything); values lie in [0, 2].
    """
    q = torch.nn.functional.normalize(torch.as_tensor(np.asarray(query_feats), dtype=torch.float32), dim=1)
    g = torch.nn.functional.normalize(torch.as_tensor(np.asarray(gallery_feats), dtype=torch.float32), dim=1)
    return (1.0 - q @ g.T).numpy()


def same_camera_junk(
    query_pids: np.ndarray, query_camids: np.ndarray, gallery_pids: np.ndarray, gallery_camids: np.ndarray
) -> np.ndarray:
    """The multi-shot (Market-1501) junk rule: True where a gallery image has the query's identity
    and the query's camera, a known one (camid >= 0: an unknown camera is never the same camera).

    The four int arrays broadcast against each other (query arrays (Q, 1) with gallery arrays (G,)
    give a (Q, G) mask; equal-shape arrays compare pair by pair); returns bool of the broadcast shape.
    """
    return (gallery_pids == query_pids) & (gallery_camids == query_camids) & (query_camids >= 0)


def rank_gallery(dist: np.ndarray, top: int, exclude: np.ndarray | None = None) -> list[np.ndarray]:
    """Per query (row of the (Q, G) distances), the int64 indices of its first `top` gallery images
    in the ranking of the module docstring (distances as float32, ties: lower index first),
    skipping those where the (Q, G) bool mask `exclude` (junk) is True: Q arrays of at most `top`."""
    dist = np.asarray(dist, dtype=np.float32)
    masked = dist if exclude is None else np.where(exclude, np.float32(np.inf), dist)
    order = np.argsort(masked, axis=1, kind="stable")[:, :top]
    if exclude is None:
        return list(order)
    kept = ~np.take_along_axis(exclude, order, axis=1)
    return [row[keep] for row, keep in zip(order, kept)]


def _positive_pairs(query_pids: np.ndarray, gallery_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query index, gallery index) with the same identity >= 0, grouped by query.

    Built from a sort of the gallery by identity, without a Q x G matrix.
    """
    g_order = np.argsort(gallery_pids, kind="stable")
    g_sorted = gallery_pids[g_order]
    lo = np.searchsorted(g_sorted, query_pids, side="left")
    counts = np.searchsorted(g_sorted, query_pids, side="right") - lo
    counts[query_pids < 0] = 0
    rows = np.repeat(np.arange(len(query_pids)), counts)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, g_order[lo[rows] + offsets]


def rank_metrics(
    dist: np.ndarray,
    query_pids: np.ndarray,
    query_camids: np.ndarray | None,
    gallery_pids: np.ndarray,
    gallery_camids: np.ndarray | None,
    ignore_same_camera: bool,
    max_rank: int = MAX_RANK,
) -> dict[str, Any]:
    """CMC, mAP and mINP of a (Q, G) distance matrix, as defined in the module docstring.

    With `ignore_same_camera`, gallery images of the query's identity and camera are junk
    (:func:`same_camera_junk`); camids may be None otherwise. Returns fractions in [0, 1]:
    ``cmc`` (max_rank,), ``mAP``, ``mINP``, per-query ``ap`` and ``inp`` (Q,) (NaN where invalid),
    ``valid`` (Q,) bool (the query has at least one positive) and ``num_valid``.
    Raises DrfmError when no query has a positive.

    Vectorised over (query, positive) pairs in blocks of at most BLOCK_ELEMENTS comparisons: the
    rank of each positive is counted directly, so no Q x G sort is needed.
    """
    dist = np.asarray(dist, dtype=np.float32)
    query_pids, gallery_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    num_query, num_gallery = dist.shape
    if query_pids.shape != (num_query,) or gallery_pids.shape != (num_gallery,):
        raise ValueError(f"pids of shapes {query_pids.shape}, {gallery_pids.shape} do not fit distances {dist.shape}")
    if not np.isfinite(dist).all():
        raise DrfmError("the distance matrix has NaN or inf values")
    rows, cols = _positive_pairs(query_pids, gallery_pids)
    if ignore_same_camera:
        if query_camids is None or gallery_camids is None:
            raise ValueError("ignore_same_camera needs query_camids and gallery_camids")
        query_camids, gallery_camids = np.asarray(query_camids), np.asarray(gallery_camids)
        positive = ~same_camera_junk(query_pids[rows], query_camids[rows], gallery_pids[cols], gallery_camids[cols])
        rows, cols = rows[positive], cols[positive]

    ranks = np.empty(len(rows), dtype=np.int64)
    gallery_index = np.arange(num_gallery)
    block = max(1, BLOCK_ELEMENTS // num_gallery)
    for start in range(0, len(rows), block):
        r, c = rows[start:start + block], cols[start:start + block]
        row_dist = dist[r]
        own = dist[r, c][:, None]
        before = (row_dist < own) | ((row_dist == own) & (gallery_index < c[:, None]))
        if ignore_same_camera:
            before &= ~same_camera_junk(query_pids[r, None], query_camids[r, None], gallery_pids, gallery_camids)
        ranks[start:start + block] = before.sum(axis=1) + 1

    order = np.lexsort((ranks, rows))
    rows, ranks = rows[order], ranks[order]
    num_pos = np.bincount(rows, minlength=num_query)
    valid = num_pos > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise DrfmError(f"no query has a matching gallery image ({num_query} queries, {num_gallery} gallery images)")
    first = np.cumsum(num_pos) - num_pos
    ordinal = np.arange(len(rows)) - first[rows] + 1
    ap = np.full(num_query, np.nan)
    inp = np.full(num_query, np.nan)
    ap[valid] = np.bincount(rows, weights=ordinal / ranks, minlength=num_query)[valid] / num_pos[valid]
    inp[valid] = num_pos[valid] / ranks[first[valid] + num_pos[valid] - 1]
    first_rank = ranks[first[valid]]
    cmc = np.bincount(np.minimum(first_rank, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank]
    return {
        "cmc": np.cumsum(cmc) / num_valid,
        "mAP": float(ap[valid].mean()),
        "mINP": float(inp[valid].mean()),
        "ap": ap,
        "inp": inp,
        "valid": valid,
        "num_valid": num_valid,
    }


def draw_single_shot_gallery(gallery_pids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted ascending) of one uniformly drawn gallery image per identity >= 0.

    Every image with identity < 0 (distractor) is kept. Draws one random key per image from `rng`
    and keeps the smallest key of each identity.
    """
    gallery_pids = np.asarray(gallery_pids)
    keys = rng.random(len(gallery_pids))
    order = np.lexsort((keys, gallery_pids))
    sorted_pids = gallery_pids[order]
    first_of_id = np.ones(len(order), dtype=bool)
    first_of_id[1:] = sorted_pids[1:] != sorted_pids[:-1]
    return np.sort(order[first_of_id | (sorted_pids < 0)])


def _summary(trials: list[dict[str, Any]], protocol: str, num_trials: int, seed: int | None,
             query_pids: np.ndarray, gallery_pids: np.ndarray, gallery_per_trial: int) -> dict[str, Any]:
    """Mean and population std (ddof=0) over trials, in percent, with the protocol's counts."""
    cmc = np.stack([t["cmc"] for t in trials]) * 100.0
    values = {"rank1": cmc[:, 0], "rank5": cmc[:, 4], "rank10": cmc[:, 9],
              "mAP": np.array([t["mAP"] for t in trials]) * 100.0,
              "mINP": np.array([t["mINP"] for t in trials]) * 100.0}
    result: dict[str, Any] = {}
    for key, per_trial in values.items():
        result[key] = float(per_trial.mean())
        result[f"{key}_std"] = float(per_trial.std())
    result.update(
        cmc=[float(v) for v in cmc.mean(axis=0)],
        trials=num_trials,
        seed=seed,
        protocol=protocol,
        num_query=int(len(query_pids)),
        num_gallery=int(len(gallery_pids)),
        num_gallery_per_trial=int(gallery_per_trial),
        num_gallery_ids=int(len(np.unique(gallery_pids[gallery_pids >= 0]))),
        num_valid_query=int(trials[0]["num_valid"]),
    )
    return result


def single_shot_evaluate(
    dist: np.ndarray,
    query_pids: np.ndarray,
    gallery_pids: np.ndarray,
    trials: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """SPEC's single-shot cross-resolution protocol on a (Q, G) distance matrix.

    Each trial keeps one random gallery image per identity (:func:`draw_single_shot_gallery`,
    called `trials` times on ``np.random.default_rng(seed)``) and ranks every query against it, with
    no same-camera filtering (queries are LR-camera images, the gallery HR). Returns mean and std
    over trials, in percent, of ``rank1, rank5, rank10, mAP, mINP`` (``*_std``), the mean CMC curve
    ``cmc`` (ranks 1..10, percent), ``trials, seed, protocol, num_query, num_gallery`` (all gallery
    images), ``num_gallery_per_trial, num_gallery_ids, num_valid_query``. When every identity has
    exactly one gallery image all trials are identical: it is ranked once and every std is 0.
    """
    if trials < 1:
        raise OptionError(f"{option('trials')} must be at least 1, got {trials}")
    dist, query_pids, gallery_pids = np.asarray(dist), np.asarray(query_pids), np.asarray(gallery_pids)
    if dist.shape != (len(query_pids), len(gallery_pids)):
        raise ValueError(f"distances {dist.shape} do not fit {len(query_pids)} queries x {len(gallery_pids)} gallery")
    known = gallery_pids[gallery_pids >= 0]
    deterministic = len(np.unique(known)) == len(known)
    rng = np.random.default_rng(seed)
    per_trial = []
    gallery_per_trial = 0
    for _ in range(1 if deterministic else trials):
        keep = draw_single_shot_gallery(gallery_pids, rng)
        gallery_per_trial = len(keep)
        per_trial.append(rank_metrics(dist[:, keep], query_pids, None, gallery_pids[keep], None,
                                      ignore_same_camera=False))
    return _summary(per_trial, "single-shot", trials, seed, query_pids, gallery_pids, gallery_per_trial)


def multi_shot_evaluate(
    dist: np.ndarray,
    query_pids: np.ndarray,
    query_camids: np.ndarray,
    gallery_pids: np.ndarray,
    gallery_camids: np.ndarray,
) -> dict[str, Any]:
    """The standard Market-1501 protocol on a (Q, G) distance matrix: the whole gallery, with the
    gallery images of the query's identity and camera ignored (junk); queries with no positive left
    are skipped. Same keys as :func:`single_shot_evaluate` (``trials`` 1, stds 0, ``seed`` None).
    """
    query_pids, gallery_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    metrics = rank_metrics(dist, query_pids, query_camids, gallery_pids, gallery_camids, ignore_same_camera=True)
    return _summary([metrics], "multi-shot", 1, None, query_pids, gallery_pids, len(gallery_pids))


def evaluate_features(
    feature_set: FeatureSet,
    protocol: str = "single-shot",
    trials: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Cosine distances of a FeatureSet evaluated under `protocol` ("single-shot" or "multi-shot")."""
    if protocol not in PROTOCOLS:
        raise OptionError(f"{option('protocol')} must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    dist = cosine_distance(feature_set.query_feats, feature_set.gallery_feats)
    if protocol == "single-shot":
        return single_shot_evaluate(dist, feature_set.query_pids, feature_set.gallery_pids, trials, seed)
    return multi_shot_evaluate(dist, feature_set.query_pids, feature_set.query_camids,
                               feature_set.gallery_pids, feature_set.gallery_camids)
