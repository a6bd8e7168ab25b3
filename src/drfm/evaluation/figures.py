"""The paper's analysis figures from run folders: pseudo-label F-score per epoch (Figure 6) and
distance distributions of same- vs cross-resolution positive pairs (Figure 7)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from drfm.utils.io import atomic_path  # noqa: E402


def _save(figure, out_png: str | Path) -> Path:
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(figure)
    return Path(out_png)


def plot_label_fscore(logs: dict[str, list[list[dict]]], out_png: str | Path, title: str = "") -> Path:
    """Figure 6: pairwise F-score of the pseudo-labels per epoch, one line per configuration.

    `logs` maps a legend label to the per-epoch logs of its runs (drfm.engine.checkpoint.read_log;
    several seeds: mean line, min-max band), read at `label_quality.f1`.
    """
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for label, run_logs in logs.items():
        curves = [[r["label_quality"]["f1"] for r in log if "label_quality" in r] for log in run_logs]
        curves = [c for c in curves if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        values = np.array([c[:length] for c in curves])
        epochs = np.arange(1, length + 1)
        axis.plot(epochs, values.mean(0), marker="o", ms=3, label=f"{label} (n={len(curves)})")
        if len(curves) > 1:
            axis.fill_between(epochs, values.min(0), values.max(0), alpha=0.2)
    axis.set_xlabel("epoch")
    axis.set_ylabel("pseudo-label pairwise F-score")
    axis.set_title(title or "Pseudo-label quality during training")
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, out_png)


def positive_pair_distances(features: np.ndarray, pids: np.ndarray, is_lr: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances (1 - cos) of positive pairs: (same-resolution pairs, cross-resolution pairs).

    `features` (N, D) L2-normalised, `pids` (N,), `is_lr` (N,) bool. Pairs are formed within each
    identity only (memory grows with the images per identity, not with N^2).
    """
    same, cross = [], []
    order = np.argsort(pids, kind="stable")
    boundaries = np.flatnonzero(np.diff(pids[order])) + 1
    for group in np.split(order, boundaries):
        if pids[group[0]] < 0 or group.size < 2:
            continue
        dist = 1.0 - features[group] @ features[group].T
        upper = np.triu(np.ones((group.size, group.size), dtype=bool), k=1)
        lr = is_lr[group]
        mixed = lr[:, None] != lr[None, :]
        same.append(dist[upper & ~mixed])
        cross.append(dist[upper & mixed])
    return (np.concatenate(same) if same else np.empty(0)), (np.concatenate(cross) if cross else np.empty(0))


def plot_pair_distance_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path,
                                  title: str = "") -> Path:
    """Figure 7: per panel (e.g. 'A5 (FC)', 'CRFF'), histograms of same- vs cross-resolution
    positive-pair distances, with the gap between their means in the panel title."""
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), sharey=True, squeeze=False)
    for axis, (label, (same, cross)) in zip(axes[0], panels.items()):
        bins = np.linspace(0, max(float(np.max(same, initial=0)), float(np.max(cross, initial=0)), 1e-3), 40)
        axis.hist(same, bins=bins, alpha=0.55, density=True, label=f"same resolution ({same.size})")
        axis.hist(cross, bins=bins, alpha=0.55, density=True, label=f"cross resolution ({cross.size})")
        gap = float(np.mean(cross) - np.mean(same)) if same.size and cross.size else float("nan")
        axis.set_title(f"{label}: mean gap {gap:.3f}")
        axis.set_xlabel("cosine distance of positive pairs")
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("density")
    if title:
        figure.suptitle(title)
    return _save(figure, out_png)
