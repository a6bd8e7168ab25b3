"""Instance memories, resolution centroids and the Cluster Contrast memory against hand computations."""

import math

import pytest
import torch

from drfm.memory.cluster_memory import ClusterMemory
from drfm.losses import single_centroid_contrastive_loss
from drfm.memory.memories import InstanceMemory
from drfm.utils.group_means import normalized_group_means


def unit(x: float, y: float) -> list[float]:
    norm = math.hypot(x, y)
    return [x / norm, y / norm]


def make_memory() -> InstanceMemory:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, -1])
    origins = torch.tensor([0, 1, 1, 0, 0, 1])
    return InstanceMemory(features, labels, origins, momentum=0.2)


def test_update_formula_on_one_slot():
    memory = make_memory()
    memory.update(torch.tensor([0]), torch.tensor([[0.0, 1.0]]))
    # 0.2 * (1, 0) + 0.8 * (0, 1) = (0.2, 0.8), then normalised.
    assert memory.features[0].tolist() == pytest.approx(unit(0.2, 0.8))
    assert memory.features[1].tolist() == [0.0, 1.0]


def test_update_with_a_repeated_slot_uses_the_batch_mean_once():
    memory = make_memory()
    memory.update(torch.tensor([1, 3, 1]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    # slot 1: mean of (1, 0) and (0, 1) = (0.5, 0.5); 0.2 * (0, 1) + 0.8 * (0.5, 0.5) = (0.4, 0.6).
    assert memory.features[1].tolist() == pytest.approx(unit(0.4, 0.6))
    # slot 3: 0.2 * (0.8, 0.6) + 0.8 * (0, 1) = (0.16, 0.92).
    assert memory.features[3].tolist() == pytest.approx(unit(0.16, 0.92))
    # the batch order does not matter
    other = make_memory()
    other.update(torch.tensor([1, 1, 3]), torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(other.features, memory.features)


def test_update_takes_no_gradient_and_keeps_the_graph_clean():
    memory = make_memory()
    feature = torch.tensor([[0.0, 1.0]], requires_grad=True)
    memory.update(torch.tensor([2]), feature * 2)
    assert not memory.features.requires_grad


def test_resolution_centroids_with_one_origin_missing():
    memory = make_memory()
    centroids, present = memory.resolution_centroids(num_clusters=2)
    assert centroids.shape == (2, 2, 2)
    assert present.tolist() == [[True, True], [True, False]]
    assert centroids[0, 0].tolist() == pytest.approx([1.0, 0.0])  # slot 0
    assert centroids[0, 1].tolist() == pytest.approx(unit(0.6, 1.8))  # slots 1, 2
    assert centroids[1, 0].tolist() == pytest.approx(unit(-0.2, 0.6))  # slots 3, 4
    assert centroids[1, 1].tolist() == [0.0, 0.0]  # none; slot 5 (label -1) is ignored


def test_cluster_centroids_pool_both_origins():
    memory = make_memory()
    centroids = memory.cluster_centroids(num_clusters=3)
    assert centroids[0].tolist() == pytest.approx(unit(1.6, 1.8))
    assert centroids[1].tolist() == pytest.approx(unit(-0.2, 0.6))
    assert centroids[2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="num_clusters"):
        memory.cluster_centroids(num_clusters=1)


def test_centroids_track_updates():
    torch.manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(40, 3), dim=1)
    labels = torch.randint(-1, 4, (40,))
    origins = torch.randint(0, 2, (40,))
    memory = InstanceMemory(features, labels, origins)
    for _ in range(5):
        memory.update(torch.randint(0, 40, (8,)), torch.randn(8, 3))
    centroids, present = memory.resolution_centroids(num_clusters=5)
    groups = torch.where(labels >= 0, labels * 2 + origins, -1)
    expected, counts = normalized_group_means(memory.features, groups, 10)
    torch.testing.assert_close(centroids, expected.view(5, 2, 3), rtol=0, atol=1e-6)
    assert torch.equal(present, (counts > 0).view(5, 2))
    assert not present[4].any()
    expected_clusters = normalized_group_means(memory.features, labels, 5)[0]
    torch.testing.assert_close(memory.cluster_centroids(5), expected_clusters, rtol=0, atol=1e-6)


def test_normalized_group_means_ignores_negative_groups():
    features = torch.tensor([[3.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    means, counts = normalized_group_means(features, torch.tensor([1, 1, -1]), 2)
    assert counts.tolist() == [0, 2]
    assert means.tolist()[0] == [0.0, 0.0]
    assert means[1].tolist() == pytest.approx(unit(3.0, 1.0))


def test_instance_memory_checkpoint_resumes_exactly(tmp_path):
    memory = make_memory()
    memory.update(torch.tensor([0, 4]), torch.tensor([[0.3, 0.7], [0.1, -0.9]]))
    path = tmp_path / "memory.pt"
    torch.save(memory.state_dict(), path)
    restored = InstanceMemory.from_state_dict(torch.load(path))
    assert restored.momentum == 0.2
    for name in ("features", "labels", "origins"):
        assert torch.equal(getattr(restored, name), getattr(memory, name))
    batch = (torch.tensor([1, 2, 2]), torch.tensor([[0.5, 0.5], [0.9, 0.1], [-0.2, 0.4]]))
    memory.update(*batch)
    restored.update(*batch)
    assert torch.equal(restored.features, memory.features)
    assert torch.equal(restored.resolution_centroids(2)[0], memory.resolution_centroids(2)[0])


def test_instance_memory_rejects_bad_origins():
    with pytest.raises(ValueError, match="origins"):
        InstanceMemory(torch.eye(2), torch.tensor([0, 1]), torch.tensor([0, 2]))


def test_cluster_memory_from_features_loss_and_update(tmp_path):
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.6, 0.8]])
    memory = ClusterMemory.from_features(features, torch.tensor([0, 0, 1, -1]), num_clusters=2)
    assert memory.centroids[0].tolist() == pytest.approx(unit(1.0, 1.0))
    assert memory.centroids[1].tolist() == pytest.approx([0.0, 1.0])

    batch = torch.tensor([[0.6, 0.8]], requires_grad=True)
    loss = single_centroid_contrastive_loss(batch, torch.tensor([1]), memory.centroids, 0.05)
    a, b = (0.6 + 0.8) / math.sqrt(2) / 0.05, 0.8 / 0.05
    assert loss.item() == pytest.approx(-math.log(math.exp(b) / (math.exp(a) + math.exp(b))), rel=1e-5)
    loss.backward()
    assert batch.grad is not None and not memory.centroids.requires_grad

    memory.update(torch.tensor([[1.0, 0.0], [0.0, -1.0], [1.0, 0.0]]), torch.tensor([1, 0, 1]))
    # cluster 1: one step with the batch mean (1, 0): 0.1 * (0, 1) + 0.9 * (1, 0).
    assert memory.centroids[1].tolist() == pytest.approx(unit(0.9, 0.1))
    # cluster 0: 0.1 * (1, 1) / sqrt(2) + 0.9 * (0, -1).
    c = 0.1 / math.sqrt(2)
    assert memory.centroids[0].tolist() == pytest.approx(unit(c, c - 0.9))

    torch.save(memory.state_dict(), tmp_path / "cm.pt")
    restored = ClusterMemory.from_state_dict(torch.load(tmp_path / "cm.pt"))
    assert torch.equal(restored.centroids, memory.centroids)
    assert restored.momentum == 0.1
