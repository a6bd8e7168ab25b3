"""Exact kNN and the sparse k-reciprocal Jaccard distance, against hand-computed values and a
dense reference written here from the published algorithm (Zhong et al. 2017 as used by
cluster-contrast's compute_jaccard_distance)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from drfm.errors import DrfmError
from drfm.labels import jaccard as jaccard_module
from drfm.labels.cluster import cluster_features
from drfm.labels.jaccard import (
    ZERO_DISTANCE,
    expanded_sets,
    half_k,
    jaccard_distance,
    jaccard_from_encoding,
    reciprocal_sets,
)
from drfm.labels.knn import import_faiss, knn, symmetric_topk_inner_products, topk_inner_products

ANGLES_DEG = [0.0, 20.0, 50.0, 95.0, 180.0]
# Neighbour order of the unit vectors at ANGLES_DEG, worked out from the angle differences.
ANGLE_NEIGHBOURS = [[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [2, 1, 3, 0, 4], [3, 2, 1, 4, 0], [4, 3, 2, 1, 0]]


def unit_circle(angles_deg: list[float]) -> torch.Tensor:
    radians = torch.tensor(angles_deg, dtype=torch.float64) * math.pi / 180.0
    return torch.stack([radians.cos(), radians.sin()], dim=1).float()


def clustered(n: int, dim: int, centers: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Unit rows around `centers` random centres with per-centre spread, 10% uniform outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((centers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.5, 1.3, size=centers)
    planted = rng.integers(0, centers, size=n)
    planted[rng.random(n) < 0.1] = -1
    x = rng.standard_normal((n, dim))
    members = planted >= 0
    x[members] = centres[planted[members]] + spread[planted[members], None] / np.sqrt(dim) * x[members]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.from_numpy(x.astype(np.float32)), planted


def dense_jaccard(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Dense N x N reference: boolean neighbour matrices and a loop over rows."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    dist = 2.0 - 2.0 * x @ x.T
    ranking = np.argsort(np.where(np.eye(n, dtype=bool), -np.inf, dist), axis=1, kind="stable")

    def mutual(k: int) -> np.ndarray:
        forward = np.zeros((n, n), dtype=bool)
        forward[np.arange(n)[:, None], ranking[:, :k]] = True
        return forward & forward.T

    full, half = mutual(k1), mutual(min(int(np.around(k1 / 2)) + 1, k1))
    v = np.zeros((n, n))
    for i in range(n):
        candidates = np.flatnonzero(full[i])
        overlap = (half[candidates] & full[i]).sum(1)
        chosen = candidates[overlap > 2 / 3 * half[candidates].sum(1)]
        members = full[i] | half[chosen].any(0)
        weights = np.exp(-dist[i, members])
        v[i, members] = weights / weights.sum()
    if k2 > 1:
        v = sum(v[ranking[:, t]] for t in range(k2)) / k2
    totals = v.sum(1)
    result = np.ones((n, n))
    for i in range(n):
        support = np.flatnonzero(v[i])
        shared = np.minimum(v[i, support], v[:, support]).sum(1)
        result[i] = 1.0 - shared / (totals[i] + totals - shared)
    return np.maximum(result, 0.0)


def stored_mask(matrix: sp.csr_matrix) -> np.ndarray:
    coo = matrix.tocoo()
    mask = np.zeros(matrix.shape, dtype=bool)
    mask[coo.row, coo.col] = True
    return mask


@pytest.mark.parametrize("chunk_size", [1, 2, 5, None])
def test_knn_on_the_unit_circle_matches_hand_computed_order_and_distances(chunk_size):
    x = unit_circle(ANGLES_DEG)
    dist, idx = knn(x, 5, chunk_size=chunk_size, faiss_ok=False)
    assert idx.dtype == torch.int64 and dist.dtype == torch.float32
    assert idx.tolist() == ANGLE_NEIGHBOURS
    angles = torch.tensor(ANGLES_DEG, dtype=torch.float64)
    expected = 2.0 - 2.0 * torch.cos((angles[idx] - angles[:, None]) * math.pi / 180.0)
    torch.testing.assert_close(dist.double(), expected, atol=1e-6, rtol=0)
    assert dist[0, 1].item() == pytest.approx(2 - 2 * math.cos(math.radians(20)), abs=1e-6)


def test_knn_with_faiss_gives_the_same_lists_when_installed():
    if import_faiss() is None:
        pytest.skip("faiss is not installed")
    x, _ = clustered(300, 16, 10, seed=3)
    dist_f, idx_f = knn(x, 12, faiss_ok=True)
    dist_t, idx_t = knn(x, 12, faiss_ok=False)
    assert (idx_f[:, 0] == torch.arange(300)).all()
    assert (idx_f == idx_t).float().mean() > 0.999
    torch.testing.assert_close(dist_f, dist_t, atol=1e-5, rtol=0)


def test_knn_puts_self_first_even_among_duplicates():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dist, idx = knn(x, 3, chunk_size=2, faiss_ok=False)
    assert idx[:, 0].tolist() == [0, 1, 2, 3]
    assert sorted(idx[0].tolist()) == [0, 1, 2]
    assert dist[:3].abs().max().item() == 0.0
    assert dist[3].tolist() == [0.0, 2.0, 2.0]


@pytest.mark.parametrize("chunk_size", [7, 64, 300])
def test_symmetric_search_equals_the_plain_chunked_search(chunk_size):
    x, _ = clustered(300, 24, 12, seed=1)
    plain_s, plain_i = topk_inner_products(x, 10, 50)
    sym_s, sym_i = symmetric_topk_inner_products(x, 10, chunk_size)
    assert torch.equal(sym_i, plain_i)
    torch.testing.assert_close(sym_s, plain_s, atol=1e-5, rtol=0)


def test_knn_rejects_bad_input():
    with pytest.raises(DrfmError, match="k:"):
        knn(torch.eye(3), 4)
    with pytest.raises(DrfmError, match="2-D"):
        knn(torch.ones(5), 1)
    with pytest.raises(DrfmError, match="floating"):
        knn(torch.ones((3, 2), dtype=torch.int64), 1)


def test_reciprocal_sets_keep_only_mutual_neighbours():
    idx = np.array([[0, 1], [1, 0], [2, 1], [3, 2]])
    reciprocal = reciprocal_sets(idx, 2).toarray()
    assert reciprocal.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert [half_k(k1) for k1 in (1, 2, 20, 25, 30)] == [1, 2, 11, 13, 16]


def test_expansion_needs_strictly_more_than_two_thirds_overlap():
    n = 6
    reciprocal = np.eye(n)
    reciprocal[0, [1, 2]] = 1.0  # R(0) = {0, 1, 2}
    half = np.eye(n)
    half[1, [0, 5]] = 1.0  # H(1) = {0, 1, 5}: overlap with R(0) is 2, not > 2
    half[2, [0, 1, 4]] = 1.0  # H(2) = {0, 1, 2, 4}: overlap 3 > 8/3
    expanded = expanded_sets(sp.csr_matrix(reciprocal), sp.csr_matrix(half)).toarray()
    assert np.flatnonzero(expanded[0]).tolist() == [0, 1, 2, 4]
    assert (expanded[1:] == np.eye(n)[1:]).all()


def two_pairs(theta_deg: float, phi_deg: float) -> torch.Tensor:
    """Points a, b at angle theta in the (e0, e1) plane; c, d at angle phi in the (e2, e3) plane."""
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    return torch.tensor(
        [[1, 0, 0, 0], [math.cos(t), math.sin(t), 0, 0], [0, 0, 1, 0], [0, 0, math.cos(p), math.sin(p)]],
        dtype=torch.float32,
    )


def test_jaccard_of_two_pairs_is_one_minus_exp_of_minus_distance():
    # k1 = 2: R(a) = E(a) = {a, b}; V[a] = (1, e^-d) / (1 + e^-d), V[b] mirrored, so
    # sum min = 2 e^-d / (1 + e^-d), sum max = 2 - sum min and J = 1 - e^-d with d = 2 - 2 cos.
    matrix = jaccard_distance(two_pairs(60.0, 30.0), k1=2, k2=1, faiss_ok=False)
    assert isinstance(matrix, sp.csr_matrix) and matrix.shape == (4, 4)
    assert stored_mask(matrix).tolist() == [[True, True, False, False]] * 2 + [[False, False, True, True]] * 2
    dense = matrix.toarray()
    assert dense[0, 1] == dense[1, 0] == pytest.approx(1 - math.exp(-1.0), abs=1e-6)
    assert dense[2, 3] == pytest.approx(1 - math.exp(-(2 - 2 * math.cos(math.radians(30)))), abs=1e-6)
    assert np.diag(dense).tolist() == [ZERO_DISTANCE] * 4


def test_a_zero_distance_stays_an_explicit_entry():
    # k2 = 2 averages V[a] and V[b]: both rows become (1/2, 1/2) and their distance is exactly 0.
    matrix = jaccard_distance(two_pairs(60.0, 30.0), k1=2, k2=2, faiss_ok=False)
    assert matrix.nnz == 8
    assert 0.0 < matrix[0, 1] <= 1e-8 and 0.0 < matrix[2, 3] <= 1e-8
    assert DBSCAN(eps=0.1, min_samples=2, metric="precomputed").fit_predict(matrix).tolist() == [0, 0, 1, 1]


def test_jaccard_from_encoding_matches_brute_force_in_any_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    values = rng.random((40, 30)) * (rng.random((40, 30)) < 0.15)
    values[np.arange(40), np.arange(40) % 30] += 0.5  # no empty row
    shared = np.minimum(values[:, None, :], values[None, :, :]).sum(2)
    totals = values.sum(1)
    expected = 1.0 - shared / (totals[:, None] + totals[None, :] - shared)
    for budget in (1, 17, 1 << 21):
        monkeypatch.setattr(jaccard_module, "TRIPLES_PER_CHUNK", budget)
        result = jaccard_from_encoding(sp.csr_matrix(values))
        assert (stored_mask(result) == (shared > 0)).all()
        np.testing.assert_allclose(result.toarray()[shared > 0], np.maximum(expected, ZERO_DISTANCE)[shared > 0],
                                   atol=1e-8)


def test_sparse_path_matches_the_dense_reference():
    x, planted = clustered(1600, 32, 60, seed=7)
    reference = dense_jaccard(x.numpy(), 30, 6)
    sparse = jaccard_distance(x, 30, 6, faiss_ok=False)
    stored = stored_mask(sparse)
    assert (stored == (reference < 1.0)).all()
    np.testing.assert_allclose(sparse.toarray()[stored], np.maximum(reference[stored], ZERO_DISTANCE), atol=1e-6)
    expected = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(reference)
    labels = cluster_features(x, 30, 6, eps=0.6, min_samples=4, faiss_ok=False)
    assert expected.max() >= 30 and (expected == -1).sum() >= 50  # a non-trivial clustering
    assert adjusted_rand_score(expected, labels) >= 0.99


def test_longer_knn_lists_give_the_same_distances_as_a_search_at_k1():
    # A k1 scan searches once at its largest k1 and hands every candidate the first k1 columns.
    x, _ = clustered(300, 16, 12, seed=3)
    neighbours = knn(x, 25, faiss_ok=False)
    for k1, k2 in ((6, 2), (15, 6), (25, 6)):
        reused = jaccard_distance(x, k1, k2, neighbours=neighbours)
        searched = jaccard_distance(x, k1, k2, faiss_ok=False)
        assert (reused != searched).nnz == 0
    with pytest.raises(DrfmError, match="at least k1=26 columns"):
        jaccard_distance(x, 26, 6, neighbours=neighbours)
    with pytest.raises(DrfmError, match="300 rows"):
        jaccard_distance(x, 6, 2, neighbours=(neighbours[0][:10], neighbours[1][:10]))


def test_jaccard_distance_rejects_bad_input():
    x = two_pairs(60.0, 30.0)
    with pytest.raises(DrfmError, match="k1"):
        jaccard_distance(x, k1=5, k2=1)
    with pytest.raises(DrfmError, match="k2"):
        jaccard_distance(x, k1=2, k2=3)
    with pytest.raises(DrfmError, match="L2-normalised"):
        jaccard_distance(2.0 * x, k1=2, k2=1)
