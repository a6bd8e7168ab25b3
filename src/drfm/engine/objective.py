"""The training objective of a run, chosen once from the configuration (SPEC: Memories, Losses).

- `DrfmObjective`: one instance memory per feature space (E_h, E_l and, with a fusion module,
  fusion) and the losses L_cc (or L_sc in ablations), L_ic and L_ps.
- `ClusterContrastObjective`: the Cluster Contrast baseline, one centroid memory over E_h features
  and its L_sc-style loss.

Every epoch `reset` fills the memories from that epoch's features and pseudo-labels; every step
`losses` gives the named losses of the step's features (before backward) and `update` moves the
memories with them (after the optimiser step, features of every process).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from drfm.data.views import HR_ORIGIN, LR_ORIGIN
from drfm.engine import distributed
from drfm.errors import DrfmError
from drfm.labels.strategy import PseudoLabels
from drfm.losses import (cross_resolution_contrastive_loss, instance_consistency_loss,
                         probability_sharpening_loss, single_centroid_contrastive_loss)
from drfm.memory.cluster_memory import ClusterMemory
from drfm.memory.memories import InstanceMemory


def check_finite(losses: dict[str, Tensor], run_dir: str | Path, epoch: int, step: int) -> None:
    """DrfmError naming the run, epoch, step and losses when one is NaN or infinite on any
    process (call it before backward: training stops before the bad step, and the last
    checkpoint, after `epoch` epochs, stays as it was)."""
    values = {name: float(value.detach()) for name, value in losses.items()}
    if distributed.all_true(all(np.isfinite(v) for v in values.values())):
        return
    shown = ", ".join(f"L_{name} {value:.4g}" for name, value in values.items())
    raise DrfmError(f"{run_dir}: epoch {epoch}, step {step}: non-finite loss ({shown}); training "
                    f"stopped, the last good checkpoint (after {epoch} epoch(s)) is kept; "
                    f"lower train.lr or check the data, then start again")


class DrfmObjective:
    """DRFM's three memories and losses."""

    def __init__(self, loss_cfg: dict, memory_cfg: dict, device: torch.device) -> None:
        self.loss_cfg, self.memory_cfg, self.device = loss_cfg, memory_cfg, device
        self.origin: Tensor | None = None
        self.memories: dict[str, InstanceMemory] = {}
        self.num_clusters = 0
        self.labels: Tensor | None = None

    def reset(self, pseudo: PseudoLabels, features: dict[str, Tensor], origin: Tensor) -> None:
        """One memory per space of `features` ({"hr", "lr"[, "fusion"]}: (N, D) each) with this
        epoch's pseudo-labels; `origin` (N,) holds each image's HR_ORIGIN or LR_ORIGIN."""
        self.num_clusters = pseudo.num_clusters
        self.labels = torch.as_tensor(pseudo.labels, device=self.device)
        self.origin = origin.to(self.device)
        labels = torch.as_tensor(pseudo.labels)
        self.memories = {space: InstanceMemory(feats, labels, origin, momentum=self.memory_cfg["momentum"])
                         .to(self.device) for space, feats in features.items()}

    def prediction_rows(self, index: Tensor, num_labelled: int) -> Tensor | None:
        """(B [+ B_ps],) bool: the rows whose E_h features Pred reads (labelled LR images, for
        L_ic), or None without L_ic."""
        if not self.loss_cfg["instance_consistency"]:
            return None
        rows = self.origin[index] == LR_ORIGIN
        rows[num_labelled:] = False
        return rows

    def losses(self, features: dict[str, Tensor], index: Tensor, num_labelled: int,
               use_ps: bool) -> dict[str, Tensor]:
        """Named losses of one step. `features` are the model's outputs for the step's images
        (B [+ B_ps], D) per space, `index` (B [+ B_ps],) their training indices: the first
        `num_labelled` are the P x K labelled images, the rest the ambiguous LR images of L_ps;
        "predicted" holds Pred's output for the `prediction_rows` only."""
        cfg, count = self.loss_cfg, self.num_clusters
        labels = self.labels[index[:num_labelled]]
        contrast: Tensor | float = 0.0
        for space, memory in self.memories.items():
            feats = features[space][:num_labelled]
            if cfg["kind"] == "cc":
                centroids, present = memory.resolution_centroids(count)
                contrast = contrast + cross_resolution_contrastive_loss(
                    feats, labels, centroids, present, num_negatives=cfg["num_negatives"], temperature=cfg["tau_c"])
            else:
                contrast = contrast + single_centroid_contrastive_loss(
                    feats, labels, memory.cluster_centroids(count), temperature=cfg["sc_temperature"])
        losses = {cfg["kind"]: contrast}
        if cfg["instance_consistency"]:
            is_lr = self.origin[index[:num_labelled]] == LR_ORIGIN
            predicted = features["predicted"]
            if is_lr.any():
                losses["ic"] = instance_consistency_loss(predicted, features["lr"][:num_labelled][is_lr])
            elif distributed.active():  # Pred takes part in every step of every process (DDP)
                losses["ic"] = predicted.sum() * 0.0
        if use_ps:
            centroids, present = self.memories["fusion"].resolution_centroids(count)
            hr_centroids = centroids[:, HR_ORIGIN][present[:, HR_ORIGIN]]
            losses["ps"] = cfg["ps_weight"] * probability_sharpening_loss(
                features["fusion"][num_labelled:], hr_centroids, tau_s=cfg["tau_s"], tau_c=cfg["tau_c"])
        return losses

    @torch.no_grad()
    def update(self, features: dict[str, Tensor], index: Tensor, num_labelled: int) -> None:
        """Momentum step of every memory with the labelled rows of every process's step."""
        index = distributed.gather_rows(index[:num_labelled])
        for space, memory in self.memories.items():
            memory.update(index, distributed.gather_rows(features[space][:num_labelled].detach()))

    def state(self) -> dict[str, Tensor]:
        """The memories' tensors, named SPACE.NAME (to compare processes in tests)."""
        return {f"{space}.{name}": value for space, memory in self.memories.items()
                for name, value in memory.state_dict().items() if isinstance(value, Tensor)}


class ClusterContrastObjective:
    """Cluster Contrast: one momentum centroid per cluster over E_h features."""

    def __init__(self, memory_cfg: dict, device: torch.device) -> None:
        self.memory_cfg, self.device = memory_cfg, device
        self.memory: ClusterMemory | None = None
        self.labels: Tensor | None = None

    def reset(self, pseudo: PseudoLabels, features: dict[str, Tensor], origin: Tensor) -> None:
        """Centroids = cluster means of this epoch's E_h features `features["hr"]` (N, D); `origin`
        is not used (one encoder reads every image alike)."""
        self.labels = torch.as_tensor(pseudo.labels, device=self.device)
        self.memory = ClusterMemory.from_features(features["hr"], torch.as_tensor(pseudo.labels), pseudo.num_clusters,
                                                  momentum=self.memory_cfg["cluster_contrast_momentum"]).to(self.device)

    def prediction_rows(self, index: Tensor, num_labelled: int) -> None:
        """None: the baseline has no predictor."""
        return None

    def losses(self, features: dict[str, Tensor], index: Tensor, num_labelled: int,
               use_ps: bool) -> dict[str, Tensor]:
        """{"sc": L_sc of the labelled rows' E_h features against the centroids at
        memory.cluster_contrast_temperature}; `use_ps` is never set."""
        temperature = self.memory_cfg["cluster_contrast_temperature"]
        return {"sc": single_centroid_contrastive_loss(features["hr"][:num_labelled], self.labels[index[:num_labelled]],
                                                       self.memory.centroids, temperature)}

    @torch.no_grad()
    def update(self, features: dict[str, Tensor], index: Tensor, num_labelled: int) -> None:
        """Momentum step of the centroids with the labelled rows of every process's step."""
        index = distributed.gather_rows(index[:num_labelled])
        self.memory.update(distributed.gather_rows(features["hr"][:num_labelled].detach()), self.labels[index])

    def state(self) -> dict[str, Tensor]:
        """The centroids (to compare processes in tests)."""
        return {"centroids": self.memory.centroids}


Objective = DrfmObjective | ClusterContrastObjective


def build_objective(config: dict, device: torch.device) -> Objective:
    """The objective `config` names: Cluster Contrast for method=cluster_contrast, DRFM (or its
    ablation) otherwise."""
    if config["method"] == "cluster_contrast":
        return ClusterContrastObjective(config["memory"], device)
    return DrfmObjective(config["loss"], config["memory"], device)
