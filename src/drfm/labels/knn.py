"""Exact k-nearest neighbours of L2-normalised feature rows, computed in chunks.

Distances are squared Euclidean distances between unit rows, ``d = 2 - 2 <x_i, x_j>`` (in [0, 4]);
for rows that are not unit-norm they are still ``2 - 2 <x_i, x_j>``, a monotone function of the
inner product, so the ranking is by inner product. Every row's own index is at column 0 with
distance exactly 0, even when other rows duplicate it. Memory is O(N * k) plus one
(chunk_size, N) similarity block; no N x N array is built.

Backends, first that applies: faiss (``IndexFlatIP``) when it is importable, ``faiss_ok`` is true
and the computation runs on the CPU; otherwise torch on the features' device (or ``device``), so
CUDA features are searched on the GPU. The torch backend uses the symmetry of the inner products:
each (chunk, rows after it) block is computed once and serves both its rows (top-k along the
rows) and the later rows (top-k along the columns), about half the multiply-adds of the plain
chunked search ``topk_inner_products``, which is kept as the reference "exact kNN floor".
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch

from drfm.errors import DrfmError

# Elements of one (chunk_size, N) float32 similarity block when chunk_size is not given (128 MiB).
BLOCK_ELEMENTS = 1 << 25


def default_chunk_size(n: int) -> int:
    """Rows per similarity block for N rows: about BLOCK_ELEMENTS / N, clamped to [64, 4096]."""
    return int(min(4096, max(64, BLOCK_ELEMENTS // max(n, 1))))


def import_faiss() -> ModuleType | None:
    """The faiss module, or None when it is not installed."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


def check_features(features: torch.Tensor, name: str = "features") -> None:
    """Raise DrfmError unless `features` is a 2-D floating tensor with at least one row."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise DrfmError(f"{name}: expected a 2-D tensor (N, D), got {_describe(features)}")
    if not features.is_floating_point():
        raise DrfmError(f"{name}: expected floating-point values, got {features.dtype}")
    if features.shape[0] < 1 or features.shape[1] < 1:
        raise DrfmError(f"{name}: expected at least one row and one column, got {tuple(features.shape)}")


def knn(
    features: torch.Tensor,
    k: int,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    faiss_ok: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of every row among all rows, itself included.

    Args:
        features: (N, D) floating tensor, rows assumed L2-normalised.
        k: neighbours per row, 1 <= k <= N, the row itself counted (column 0).
        chunk_size: query rows per (chunk_size, N) similarity block of the torch backend;
            default ``default_chunk_size(N)``.
        device: where the torch backend computes (default: the features' device).
        faiss_ok: allow the faiss backend when faiss is installed and the device is the CPU.

    Returns:
        dist: (N, k) float32 on the CPU, ``2 - 2 <x_i, x_j>`` clamped at 0, ascending per row,
            column 0 exactly 0.
        idx: (N, k) int64 on the CPU, neighbour row indices; ``idx[i, 0] == i``.
    """
    check_features(features)
    n = features.shape[0]
    if not isinstance(k, int) or not 1 <= k <= n:
        raise DrfmError(f"k: expected an integer in [1, N={n}], got {k!r}")
    if chunk_size is not None and chunk_size < 1:
        raise DrfmError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    target = torch.device(device) if device is not None else features.device
    faiss = import_faiss() if faiss_ok and target.type == "cpu" else None
    if faiss is not None:
        sim, idx = _faiss_search(faiss, features, k)
    else:
        x = features.detach().to(device=target, dtype=torch.float32)
        sim, idx = symmetric_topk_inner_products(x, k, chunk_size or default_chunk_size(n))
    dist = (2.0 - 2.0 * sim).clamp_min_(0.0)
    dist[:, 0] = 0.0
    return dist.contiguous(), idx.contiguous()


def topk_inner_products(x: torch.Tensor, k: int, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked matrix product + top-k: the k largest inner products of every row of `x`.

    The row itself is forced to column 0 (its similarity reported as +inf). Computes on x's
    device and returns (N, k) float32 similarities and int64 indices on the CPU, descending.
    This is also the "exact kNN floor" that benchmarks compare the whole clustering against.
    """
    n = x.shape[0]
    sims = torch.empty((n, k), dtype=torch.float32)
    idx = torch.empty((n, k), dtype=torch.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = x[start:stop] @ x.T
        rows = torch.arange(stop - start, device=x.device)
        block[rows, rows + start] = float("inf")
        top_s, top_i = torch.topk(block, k, dim=1)
        sims[start:stop] = top_s.cpu()
        idx[start:stop] = top_i.cpu()
    return sims, idx


def symmetric_topk_inner_products(x: torch.Tensor, k: int, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Same result as ``topk_inner_products`` from about half the multiply-adds.

    Chunk c of rows is multiplied only with the rows from c on; the block's top-k along its rows
    completes chunk c's lists (earlier rows were merged in by earlier chunks) and its top-k
    along its columns is merged into the running lists of every later row. Running lists are
    (N, k); the extra memory is one (chunk_size, N) block on x's device.
    """
    n = x.shape[0]
    best_s = torch.full((n, k), float("-inf"), device=x.device)
    best_i = torch.zeros((n, k), dtype=torch.int64, device=x.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = x[start:stop] @ x[start:].T
        rows = torch.arange(stop - start, device=x.device)
        block[rows, rows] = float("inf")
        top_s, top_i = torch.topk(block, min(k, n - start), dim=1)
        mine = slice(start, stop)
        best_s[mine], best_i[mine] = _merge_topk(best_s[mine], best_i[mine], top_s, top_i + start)
        if stop < n:
            later = slice(stop, n)
            top_s, top_i = torch.topk(block[:, stop - start :].T, min(k, stop - start), dim=1)
            best_s[later], best_i[later] = _merge_topk(best_s[later], best_i[later], top_s, top_i + start)
    return best_s.cpu(), best_i.cpu()


def _merge_topk(
    sims: torch.Tensor, idx: torch.Tensor, new_sims: torch.Tensor, new_idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise top-k (k = sims.shape[1]) of two disjoint candidate lists, descending."""
    top_s, where = torch.topk(torch.cat([sims, new_sims], dim=1), sims.shape[1], dim=1)
    return top_s, torch.gather(torch.cat([idx, new_idx], dim=1), 1, where)


def _faiss_search(faiss: ModuleType, features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inner-product search with faiss IndexFlatIP; self moved to column 0."""
    x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sim, idx = index.search(x, k)
    rows = np.arange(x.shape[0], dtype=np.int64)[:, None]
    # Stable sort on "is self" keeps the other neighbours in order; drop one to make room for self.
    order = np.argsort(idx == rows, axis=1, kind="stable")[:, : k - 1]
    idx = np.hstack([rows, np.take_along_axis(idx, order, axis=1)])
    sim = np.hstack([np.full_like(rows, np.inf, dtype=np.float32), np.take_along_axis(sim, order, axis=1)])
    return torch.from_numpy(sim), torch.from_numpy(idx.astype(np.int64, copy=False))


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    return type(value).__name__
