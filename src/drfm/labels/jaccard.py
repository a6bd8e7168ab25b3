"""Sparse k-reciprocal Jaccard distance (Zhong et al., CVPR 2017) with the semantics of
cluster-contrast's ``compute_jaccard_distance``, in O(N * k) memory.

For L2-normalised rows x_1..x_N and the exact kNN lists ``idx`` (k1 columns, self first):

1. k-reciprocal sets: ``R(i) = {j in idx[i, :k1] : i in idx[j, :k1]}``; half sets ``H(i)``
   likewise with the first ``round(k1 / 2) + 1`` columns (numpy rounding, half to even).
2. Expansion: ``E(i) = R(i)`` united with every ``H(c)``, ``c in R(i)``, for which
   ``|H(c) & R(i)| > 2/3 |H(c)|``.
3. Encoding: ``V[i, j] = softmax_{j in E(i)}(-d_ij)`` with ``d_ij = 2 - 2 <x_i, x_j>``; each
   row of V sums to 1 and holds |E(i)| non-zeros (a CSR matrix).
4. Local query expansion (k2 > 1): ``V_qe[i] = mean(V[idx[i, :k2]])``, a sparse product.
5. Jaccard: ``J[i, j] = 1 - sum_f min(V_qe[i, f], V_qe[j, f]) / sum_f max(...)`` with
   ``sum max = |V_qe[i]|_1 + |V_qe[j]|_1 - sum min``, evaluated only for pairs whose rows share a
   non-zero column. All other pairs have distance exactly 1 and are not stored.

The result is a symmetric ``scipy.sparse.csr_matrix`` (float64) whose stored entries are the
distances < 1 (an exact 0, e.g. on the diagonal, is stored as ``ZERO_DISTANCE`` so it stays an
explicit entry); every diagonal entry is stored. Step 5 enumerates, per shared column f, the
pairs i < j of rows holding f, in bounded chunks, and sums the minima in 64-bit fixed point
(steps of at most 2**-29 of the largest row sum) after one integer sort per chunk.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch

from drfm.errors import DrfmError
from drfm.labels.knn import check_features, knn

# Stored in place of an exact distance 0 so that it stays an explicit sparse entry.
ZERO_DISTANCE = float(np.finfo(np.float64).tiny)
# Largest deviation of a row norm from 1 accepted as "L2-normalised".
NORM_TOLERANCE = 1e-3
# (i, j, f) triples handled per chunk of the Jaccard stage (about 16 bytes of work memory each).
TRIPLES_PER_CHUNK = 1 << 21
# Feature-row pairs per chunk when computing inner products outside the kNN lists.
_PAIR_ELEMENTS = 1 << 20


def half_k(k1: int) -> int:
    """Columns of the kNN lists used for the half reciprocal sets: round(k1 / 2) + 1, at most k1."""
    return min(int(np.around(k1 / 2)) + 1, k1)


def reciprocal_sets(idx: np.ndarray, k: int) -> sp.csr_matrix:
    """k-reciprocal neighbour sets as an (N, N) 0/1 CSR matrix.

    Args:
        idx: (N, >= k) int kNN lists, self first.
        k: number of leading columns that define the neighbourhood.

    Returns:
        R with ``R[i, j] = 1`` iff j is among i's first k neighbours and i among j's.
        R[i, i] = 1 always; sorted indices.
    """
    graph = _neighbour_graph(idx, k, 1.0)
    return graph.multiply(graph.T.tocsr()).tocsr()


def expanded_sets(reciprocal: sp.csr_matrix, half: sp.csr_matrix) -> sp.csr_matrix:
    """Expanded k-reciprocal sets E(i) as an (N, N) 0/1 CSR matrix with sorted indices.

    ``E(i) = R(i) | union of H(c)`` over ``c in R(i)`` with ``|H(c) & R(i)| > 2/3 |H(c)|``.
    """
    n = reciprocal.shape[0]
    overlap = (reciprocal @ half.T).multiply(reciprocal).tocoo()
    half_sizes = np.diff(half.indptr)
    keep = overlap.data > 2.0 / 3.0 * half_sizes[overlap.col]
    chosen = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (overlap.row[keep], overlap.col[keep])), shape=(n, n)
    )
    expanded = (reciprocal + chosen @ half).tocsr()
    expanded.sum_duplicates()
    expanded.data[:] = 1.0
    return expanded


def encode(
    features: torch.Tensor, expanded: sp.csr_matrix, dist: np.ndarray, idx: np.ndarray
) -> sp.csr_matrix:
    """k-reciprocal encoding V: Gaussian-kernel weights softmax(-d) over each expanded set.

    Args:
        features: (N, D) L2-normalised rows (any device).
        expanded: (N, N) 0/1 CSR of the expanded sets, sorted indices.
        dist: (N, k) kNN distances ``2 - 2 <x_i, x_j>``; pairs found there are not recomputed.
        idx: (N, k) kNN indices matching `dist`.

    Returns:
        (N, N) float64 CSR with the structure of `expanded`, each row summing to 1.
    """
    n, k = idx.shape
    # Distances shifted by 1 so that a zero distance (self) stays an explicit sparse entry.
    found = _neighbour_graph(idx, k, dist + 1.0, sort=True).multiply(expanded).tocsr()
    found_ones = found.copy()
    found_ones.data[:] = 1.0
    missing = (expanded - found_ones).tocoo()
    missing.eliminate_zeros()
    shifted_missing = _pair_distances(features, missing.row, missing.col) + 1.0
    shifted = (found + sp.csr_matrix((shifted_missing, (missing.row, missing.col)), shape=(n, n))).tocsr()
    shifted.sum_duplicates()
    kernel = sp.csr_matrix((np.exp(1.0 - shifted.data), shifted.indices, shifted.indptr), shape=(n, n))
    row_sums = np.asarray(kernel.sum(axis=1), dtype=np.float64).ravel()
    kernel.data /= np.repeat(row_sums, np.diff(kernel.indptr))
    return kernel


def query_expansion(encoding: sp.csr_matrix, idx: np.ndarray, k2: int) -> sp.csr_matrix:
    """Local query expansion: row i becomes the mean of the encodings of its k2 nearest rows."""
    if k2 == 1:
        return encoding
    expanded = (_neighbour_graph(idx, k2, 1.0 / k2) @ encoding).tocsr()
    expanded.sum_duplicates()
    return expanded


def jaccard_from_encoding(encoding: sp.csr_matrix) -> sp.csr_matrix:
    """Jaccard distances between the non-negative rows of `encoding`, for pairs sharing support.

    ``J[i, j] = 1 - m / (|a|_1 + |b|_1 - m)`` with ``m = sum_f min(a_f, b_f)`` over the shared
    non-zero columns of rows a = encoding[i], b = encoding[j]. Returns a symmetric (N, N) float64
    CSR holding every pair with m > 0 and the whole diagonal; exact zeros are stored as
    ZERO_DISTANCE. The minima are summed in 64-bit fixed point, in steps of at most 2**-29 of
    the largest row sum; work memory is bounded by TRIPLES_PER_CHUNK.
    """
    n = encoding.shape[0]
    enc = encoding.tocsr()
    enc.sum_duplicates()
    norms = np.asarray(enc.sum(axis=1), dtype=np.float64).ravel()
    # Column view, each column's rows ascending; `position` locates every CSR entry in it.
    entry_id = sp.csr_matrix((np.arange(1, enc.nnz + 1, dtype=np.int64), enc.indices, enc.indptr), shape=enc.shape)
    by_column = entry_id.T.tocsr()
    by_column.sort_indices()
    col_entry = by_column.data - 1
    col_rows = by_column.indices
    col_values = enc.data[col_entry]
    position = np.empty(enc.nnz, dtype=np.int64)
    position[col_entry] = np.arange(enc.nnz, dtype=np.int64)
    del entry_id, col_entry
    # Entry (i, f) meets the rows j > i of column f: those after it in the column view.
    later = by_column.indptr[enc.indices + 1] - position - 1
    # Every minimum and every sum of minima of a pair is at most the largest row sum.
    largest = float(norms.max()) if enc.nnz else 1.0
    max_rows = max(1, (1 << 32) // max(n, 1))
    rows_i, cols_j, mins = [], [], []
    for r0, r1 in _row_chunks(enc.indptr, later, TRIPLES_PER_CHUNK, max_rows):
        e0, e1 = enc.indptr[r0], enc.indptr[r1]
        counts = later[e0:e1]
        total = int(counts.sum())
        if total == 0:
            continue
        local_row = np.repeat(np.arange(r1 - r0, dtype=np.int64), np.diff(enc.indptr[r0 : r1 + 1]))
        slot = np.repeat(position[e0:e1] + 1 - (np.cumsum(counts) - counts), counts)
        slot += np.arange(total, dtype=np.int64)
        # Pack (row, column) key above a fixed-point minimum; one integer sort groups the pairs.
        value_bits = 62 - max(1, math.ceil(math.log2((r1 - r0) * n)))
        scale = 2.0 ** (value_bits - 1) / largest  # sums stay below 2**value_bits
        packed = np.minimum(np.repeat(enc.data[e0:e1], counts), col_values[slot])
        packed = np.rint(packed * scale).astype(np.int64)
        packed |= (np.repeat(local_row, counts) * n + col_rows[slot]) << value_bits
        packed.sort()
        keys = packed >> value_bits
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sums = np.add.reduceat(packed & ((1 << value_bits) - 1), first)
        rows_i.append((keys[first] // n + r0).astype(np.int32))
        cols_j.append((keys[first] % n).astype(np.int32))
        mins.append(sums / scale)
    i = np.concatenate(rows_i) if rows_i else np.zeros(0, dtype=np.int32)
    j = np.concatenate(cols_j) if cols_j else np.zeros(0, dtype=np.int32)
    m = np.concatenate(mins) if mins else np.zeros(0)
    dist = 1.0 - m / (norms[i] + norms[j] - m)
    np.maximum(dist, ZERO_DISTANCE, out=dist)
    diag = np.arange(n, dtype=np.int32)
    return sp.csr_matrix(
        (
            np.concatenate([dist, dist, np.full(n, ZERO_DISTANCE)]),
            (np.concatenate([i, j, diag]), np.concatenate([j, i, diag])),
        ),
        shape=(n, n),
    )


def jaccard_distance(
    features: torch.Tensor,
    k1: int = 30,
    k2: int = 6,
    *,
    chunk_size: int | None = None,
    faiss_ok: bool = True,
    neighbours: tuple[torch.Tensor, torch.Tensor] | None = None,
    timings: dict[str, float] | None = None,
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance of L2-normalised feature rows.

    Args:
        features: (N, D) floating tensor, rows L2-normalised (|norm - 1| <= NORM_TOLERANCE);
            on CUDA the kNN search runs on the GPU, the rest on the CPU.
        k1: neighbourhood size of the k-reciprocal sets, self included, 1 <= k1 <= N.
        k2: query-expansion neighbourhood, self included, 1 <= k2 <= k1.
        chunk_size: query rows per similarity block of the kNN search (see ``knn``).
        faiss_ok: allow faiss for the kNN search when installed.
        neighbours: (dist, idx) of these features from ``knn`` with k1 or more columns, used in
            place of a new search (their first k1 columns: a k1 scan searches once, at its
            largest k1); None searches.
        timings: if given, seconds per stage are added to it (a stage not yet in it starts at 0):
            knn, reciprocal, expansion, query_expansion, jaccard.

    Returns:
        (N, N) symmetric float64 ``scipy.sparse.csr_matrix``: stored entries are the Jaccard
        distances in [0, 1) of pairs that share k-reciprocal neighbours (0 stored as
        ZERO_DISTANCE), diagonal included; every missing pair has distance 1.
    """
    check_features(features)
    n = features.shape[0]
    if not isinstance(k1, int) or not 1 <= k1 <= n:
        raise DrfmError(f"k1: expected an integer in [1, N={n}] (N = number of features), got {k1!r}")
    if not isinstance(k2, int) or not 1 <= k2 <= k1:
        raise DrfmError(f"k2: expected an integer in [1, k1={k1}], got {k2!r}")
    norm_error = float((torch.linalg.vector_norm(features.detach().float(), dim=1) - 1.0).abs().max())
    if not norm_error <= NORM_TOLERANCE:
        raise DrfmError(f"features: rows must be L2-normalised, largest |norm - 1| is {norm_error:.3g}")
    stages = timings if timings is not None else {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = stages.get(name, 0.0) + now - clock
        clock = now

    if neighbours is None:
        neighbours = knn(features, k1, chunk_size=chunk_size, faiss_ok=faiss_ok)
    elif neighbours[1].shape[0] != n or neighbours[1].shape[1] < k1:
        raise DrfmError(f"neighbours: expected kNN lists of the {n} rows with at least k1={k1} columns, "
                        f"got shape {tuple(neighbours[1].shape)}")
    dist, idx = neighbours[0][:, :k1].contiguous().numpy(), neighbours[1][:, :k1].numpy().astype(np.int32)
    lap("knn")
    reciprocal = reciprocal_sets(idx, k1)
    half = reciprocal_sets(idx, half_k(k1))
    lap("reciprocal")
    encoding = encode(features, expanded_sets(reciprocal, half), dist, idx)
    del reciprocal, half
    lap("expansion")
    encoding = query_expansion(encoding, idx, k2)
    lap("query_expansion")
    result = jaccard_from_encoding(encoding)
    lap("jaccard")
    return result


def _neighbour_graph(idx: np.ndarray, k: int, values: float | np.ndarray, sort: bool = False) -> sp.csr_matrix:
    """(N, N) float64 CSR whose row i holds `values` (scalar or (N, >= k)) at columns idx[i, :k]."""
    n = idx.shape[0]
    if np.ndim(values) == 0:
        data = np.full(n * k, float(values))
    else:
        data = np.ascontiguousarray(values[:, :k], dtype=np.float64).ravel()
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    # A copy: sorting the graph's indices in place must not reorder the caller's kNN lists.
    graph = sp.csr_matrix((data, np.array(idx[:, :k]).ravel(), indptr), shape=(n, n))
    if sort:
        graph.sort_indices()
    return graph


def _pair_distances(features: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``2 - 2 <x_r, x_c>`` for the given row pairs, clamped at 0, in bounded chunks (float64).

    On the CPU this is a single-threaded numpy gather + einsum, which is several times faster
    than torch's threaded gathers for the few pairs involved (about 3 per row).
    """
    out = np.empty(len(rows), dtype=np.float64)
    x = features.detach()
    step = max(1, _PAIR_ELEMENTS // x.shape[1])
    for start in range(0, len(rows), step):
        r, c = rows[start : start + step], cols[start : start + step]
        if x.device.type == "cpu":
            xn = x.numpy()
            dots = np.einsum("pd,pd->p", xn[r], xn[c], dtype=np.float64)
        else:
            rt = torch.from_numpy(np.asarray(r, dtype=np.int64)).to(x.device)
            ct = torch.from_numpy(np.asarray(c, dtype=np.int64)).to(x.device)
            dots = torch.linalg.vecdot(x[rt].double(), x[ct].double()).cpu().numpy()
        out[start : start + step] = np.maximum(2.0 - 2.0 * dots, 0.0)
    return out


def _row_chunks(indptr: np.ndarray, cost: np.ndarray, budget: int, max_rows: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of at most `max_rows` rows whose summed entry `cost` is <= `budget`
    (a single row may exceed it)."""
    n = len(indptr) - 1
    before = np.concatenate([[0], np.cumsum(cost)])[indptr]
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        stop = int(np.searchsorted(before, before[start] + budget, side="right")) - 1
        bounds.append(min(n, start + max_rows, max(stop, start + 1)))
    return list(zip(bounds[:-1], bounds[1:]))
