"""The objectives wire memories and losses as the SPEC says: checked on tiny hand-made tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drfm.config import load_config
from drfm.data.views import HR_ORIGIN, LR_ORIGIN
from drfm.engine.objective import ClusterContrastObjective, DrfmObjective, build_objective
from drfm.labels.strategy import PseudoLabels
from drfm.losses import (cross_resolution_contrastive_loss, instance_consistency_loss, probability_sharpening_loss,
                         single_centroid_contrastive_loss)

CPU = torch.device("cpu")
# Six training images: 0-2 HR, 3-5 LR; clusters {0, 3}, {1, 4}; image 2 HR unlabelled, 5 ambiguous LR.
LABELS = np.array([0, 1, -1, 0, 1, -1])
ORIGIN = torch.tensor([HR_ORIGIN, HR_ORIGIN, HR_ORIGIN, LR_ORIGIN, LR_ORIGIN, LR_ORIGIN])


def unit_rows(seed: int, rows: int = 6, dim: int = 4) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


def pseudo() -> PseudoLabels:
    return PseudoLabels(LABELS.copy(), np.array([5]), 2, {})


def test_drfm_objective_sums_l_cc_over_spaces_and_adds_l_ic_and_l_ps():
    config = load_config("drfm")
    epoch = {space: unit_rows(seed) for seed, space in enumerate(("hr", "lr", "fusion"))}
    objective = build_objective(config, CPU)
    assert isinstance(objective, DrfmObjective)
    objective.reset(pseudo(), epoch, ORIGIN)
    index = torch.tensor([0, 3, 1, 4, 5])  # 4 labelled rows, then one ambiguous LR row
    rows = objective.prediction_rows(index, 4)
    assert rows.tolist() == [False, True, False, True, False]  # labelled LR rows only
    step = {space: unit_rows(10 + seed, rows=5) for seed, space in enumerate(("hr", "lr", "fusion"))}
    step["predicted"] = torch.randn(2, 4, generator=torch.Generator().manual_seed(20))
    losses = objective.losses(step, index, 4, use_ps=True)

    loss_cfg = config["loss"]
    labels = torch.tensor([0, 0, 1, 1])
    expected_cc = 0.0
    for space in ("hr", "lr", "fusion"):
        centroids, present = objective.memories[space].resolution_centroids(2)
        expected_cc = expected_cc + cross_resolution_contrastive_loss(
            step[space][:4], labels, centroids, present, num_negatives=loss_cfg["num_negatives"],
            temperature=loss_cfg["tau_c"])
    assert set(losses) == {"cc", "ic", "ps"}
    torch.testing.assert_close(losses["cc"], expected_cc)
    torch.testing.assert_close(losses["ic"], instance_consistency_loss(step["predicted"], step["lr"][[1, 3]]))
    centroids, present = objective.memories["fusion"].resolution_centroids(2)
    hr_centroids = centroids[:, HR_ORIGIN][present[:, HR_ORIGIN]]
    torch.testing.assert_close(losses["ps"], loss_cfg["ps_weight"] * probability_sharpening_loss(
        step["fusion"][4:], hr_centroids, tau_s=loss_cfg["tau_s"], tau_c=loss_cfg["tau_c"]))
    # At reset a memory's HR centroid of cluster 0 is image 0's feature (its only HR member).
    torch.testing.assert_close(centroids[0, HR_ORIGIN], epoch["fusion"][0])


def test_drfm_objective_update_moves_only_the_stepped_slots():
    objective = build_objective(load_config("drfm"), CPU)
    epoch = {"hr": unit_rows(0), "lr": unit_rows(1)}
    objective.reset(pseudo(), epoch, ORIGIN)
    before = {space: memory.features.clone() for space, memory in objective.memories.items()}
    step = {"hr": unit_rows(5, rows=2), "lr": unit_rows(6, rows=2)}
    objective.update(step, torch.tensor([1, 4]), 2)
    for space, memory in objective.memories.items():
        changed = (memory.features != before[space]).any(dim=1)
        assert changed.sum() == 2 and not changed.all()


def test_cluster_contrast_objective_is_the_centroid_memory_and_its_loss():
    config = load_config("cc")
    objective = build_objective(config, CPU)
    assert isinstance(objective, ClusterContrastObjective)
    epoch = {"hr": unit_rows(0), "lr": unit_rows(0)}
    labels = np.array([0, 1, 1, 0, 1, -1])
    objective.reset(PseudoLabels(labels, np.empty(0, dtype=np.int64), 2, {}), epoch, ORIGIN)
    assert objective.prediction_rows(torch.tensor([0, 1]), 2) is None
    centroids = F.normalize(torch.stack([epoch["hr"][[0, 3]].mean(0), epoch["hr"][[1, 2, 4]].mean(0)]), dim=1)
    torch.testing.assert_close(objective.memory.centroids, centroids)
    step = {"hr": unit_rows(7, rows=2)}
    losses = objective.losses(step, torch.tensor([0, 1]), 2, use_ps=False)
    expected = single_centroid_contrastive_loss(step["hr"], torch.tensor([0, 1]), centroids,
                                                config["memory"]["cluster_contrast_temperature"])
    assert set(losses) == {"sc"}
    assert losses["sc"].item() == pytest.approx(expected.item())
