"""Benchmark of the pseudo-label clustering on seeded synthetic clustered features.

Features: ``centers`` random unit centres in ``dim`` dimensions (default round(N / 34.5), so
about 31 members per centre as in a re-id training set); 90% of the rows are a centre plus
isotropic Gaussian noise of expected norm ``spread`` (default 1.0, i.e. a member's cosine to its
centre is about 0.7), assigned to centres uniformly at random; 10% are outliers drawn
uniformly on the sphere. Every row is L2-normalised. Generation is chunked in float32 so that
the peak memory is the (N, dim) matrix itself plus one small chunk.

The report times each clustering stage, the whole clustering (``total_s``) and, in the same
process, the exact-kNN floor: chunked matrix product + top-k with the same k (= k1), which is
the least any exact kNN-based clustering has to do. ``peak_rss_gib`` is the peak resident set
of the whole process (Python, torch, the features and the clustering).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from drfm.errors import DrfmError, OptionError, option
from drfm.labels.cluster import cluster_features
from drfm.labels.knn import default_chunk_size, import_faiss, topk_inner_products

# Rows generated per chunk of synthetic features.
_GENERATION_CHUNK = 4096
# Stages reported by cluster_features, in pipeline order.
STAGES = ("knn", "reciprocal", "expansion", "query_expansion", "jaccard", "dbscan")


def synthetic_features(
    n: int,
    dim: int = 2048,
    centers: int | None = None,
    outlier_fraction: float = 0.1,
    spread: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, np.ndarray]:
    """Seeded clustered unit features (see the module docstring).

    Returns:
        features: (n, dim) float32, rows L2-normalised.
        planted: (n,) int64 centre of every row, -1 for outliers.
    """
    if n < 1 or dim < 1:
        raise OptionError(f"{option('n')} and {option('dim')}: expected positive integers, got n={n}, dim={dim}")
    centers = max(1, round(n / 34.5)) if centers is None else centers
    if centers < 1:
        raise OptionError(f"{option('centers')}: expected a positive integer, got {centers}")
    if not 0.0 <= outlier_fraction <= 1.0:
        raise DrfmError(f"outlier_fraction: expected a value in [0, 1], got {outlier_fraction}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((centers, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    planted = rng.integers(0, centers, size=n, dtype=np.int64)
    planted[rng.random(n) < outlier_fraction] = -1
    features = torch.empty((n, dim), dtype=torch.float32)
    noise_scale = np.float32(spread / np.sqrt(dim))
    for start in range(0, n, _GENERATION_CHUNK):
        stop = min(start + _GENERATION_CHUNK, n)
        rows = rng.standard_normal((stop - start, dim), dtype=np.float32)
        members = planted[start:stop] >= 0
        rows[members] = centres[planted[start:stop][members]] + noise_scale * rows[members]
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        features[start:stop] = torch.from_numpy(rows)
    return features, planted


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_cluster_bench(
    n: int,
    dim: int = 2048,
    seed: int = 0,
    centers: int | None = None,
    k1: int = 30,
    k2: int = 6,
    eps: float = 0.6,
    min_samples: int = 4,
    faiss_ok: bool = True,
    floor: bool = True,
) -> dict[str, Any]:
    """Generate features, time the exact-kNN floor and the clustering; return the report dict.

    Keys: n, dim, centers, seed, k1, k2, eps, min_samples, generate_s, knn_floor_s, total_s,
    stages (seconds per stage), total_over_floor, peak_rss_gib, rss_before_clustering_gib,
    n_clusters, n_outliers, ari_vs_planted, knn_backend, threads, machine, load_average (1-minute
    load at start and end: other processes on the machine slow every stage). With floor=False the
    floor is not run and knn_floor_s and total_over_floor are None.
    """
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    features, planted = synthetic_features(n, dim, centers, seed=seed)
    generate_s = time.perf_counter() - start
    rss_before = peak_rss_gib()

    knn_floor_s = None
    if floor:
        start = time.perf_counter()
        topk_inner_products(features, k1, default_chunk_size(n))
        knn_floor_s = time.perf_counter() - start

    stages: dict[str, float] = {}
    start = time.perf_counter()
    labels = cluster_features(features, k1, k2, eps, min_samples, faiss_ok=faiss_ok, timings=stages)
    total_s = time.perf_counter() - start

    return {
        "n": n,
        "dim": dim,
        "centers": int(planted.max()) + 1 if centers is None else centers,
        "seed": seed,
        "k1": k1,
        "k2": k2,
        "eps": eps,
        "min_samples": min_samples,
        "generate_s": round(generate_s, 3),
        "knn_floor_s": None if knn_floor_s is None else round(knn_floor_s, 3),
        "total_s": round(total_s, 3),
        "stages": {name: round(stages[name], 3) for name in STAGES},
        "total_over_floor": None if knn_floor_s is None else round(total_s / knn_floor_s, 3),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "rss_before_clustering_gib": round(rss_before, 3),
        "n_clusters": int(labels.max()) + 1 if labels.size else 0,
        "n_outliers": int((labels < 0).sum()),
        "ari_vs_planted": round(float(adjusted_rand_score(planted, labels)), 4),
        "knn_backend": "faiss" if faiss_ok and import_faiss() is not None else "torch",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {_cpu_name()}",
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned two-column text table."""
    rows = [
        ("n", report["n"]),
        ("dim", report["dim"]),
        ("centers", report["centers"]),
        ("knn backend", f"{report['knn_backend']} ({report['threads']} threads)"),
        ("generate s", report["generate_s"]),
        *((f"  {name} s", seconds) for name, seconds in report["stages"].items()),
        ("total s", report["total_s"]),
        ("exact-kNN floor s", report["knn_floor_s"]),
        ("total / floor", report["total_over_floor"]),
        ("peak RSS GiB", report["peak_rss_gib"]),
        ("RSS before clustering GiB", report["rss_before_clustering_gib"]),
        ("clusters", report["n_clusters"]),
        ("outliers", report["n_outliers"]),
        ("ARI vs planted", report["ari_vs_planted"]),
        ("load average start/end", " / ".join(str(load) for load in report["load_average"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
