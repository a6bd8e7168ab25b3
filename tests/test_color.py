"""Stripe colour histograms (drfm.labels.color) and their use in the labelling step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from drfm.config import load_config
from drfm.errors import DrfmError
from drfm.labels.color import color_histogram, color_histograms
from drfm.labels.strategy import assign_pseudo_labels, cluster_with_settings, label_quality


def two_colour_person(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    """A 32 x 64 picture (the histogram's own size, so no resampling): top half, bottom half."""
    pixels = np.zeros((64, 32, 3), dtype=np.uint8)
    pixels[:32], pixels[32:] = top, bottom
    return Image.fromarray(pixels)


def test_histogram_by_hand_pure_red_over_pure_blue():
    # PIL HSV of pure red is (0, 255, 255): bins (0, 3, 3) -> joint bin (0 * 4 + 3) * 4 + 3 = 15;
    # pure blue is (170, 255, 255): hue bin 170 * 8 // 256 = 5 -> (5 * 4 + 3) * 4 + 3 = 95. With two
    # stripes each holds one colour: one bin of fraction 1 per stripe, scaled by 1 / sqrt(2).
    row = color_histogram(two_colour_person((255, 0, 0), (0, 0, 255)), stripes=2, bins=(8, 4, 4))
    expected = np.zeros(256, dtype=np.float32)
    expected[15], expected[128 + 95] = 2 ** -0.5, 2 ** -0.5
    assert row.shape == (256,) and np.allclose(row, expected)


def test_histogram_is_the_square_root_of_the_fractions():
    # A quarter of the top stripe white (HSV (0, 0, 255): bin 3), three quarters red (bin 15).
    pixels = np.zeros((64, 32, 3), dtype=np.uint8)
    pixels[:, :] = (255, 0, 0)
    pixels[:32, :8] = (255, 255, 255)
    row = color_histogram(Image.fromarray(pixels), stripes=2, bins=(8, 4, 4))
    assert row[3] == pytest.approx(0.25 ** 0.5 / 2 ** 0.5) and row[15] == pytest.approx(0.75 ** 0.5 / 2 ** 0.5)
    assert np.linalg.norm(row) == pytest.approx(1.0)


def test_down_sampling_barely_moves_the_histogram_but_other_clothes_do():
    rng = np.random.default_rng(0)
    def blocky_person() -> Image.Image:  # 8 x 4 patches of clothing, 16 x 16 pixels each: 128 x 64
        return Image.fromarray(np.kron(rng.integers(0, 256, (8, 4, 3)), np.ones((16, 16, 1))).astype(np.uint8))
    person, other = blocky_person(), blocky_person()
    low = person.resize((16, 32), Image.BICUBIC)  # r = 4
    same = float(color_histogram(person) @ color_histogram(low))
    different = float(color_histogram(person) @ color_histogram(other))
    assert same > 0.85 and different < 0.3


def test_files_are_read_in_order_and_a_bad_file_is_named(tmp_path):
    red_blue, blue_red = tmp_path / "a.png", tmp_path / "b.jpg"
    two_colour_person((255, 0, 0), (0, 0, 255)).save(red_blue)
    two_colour_person((0, 0, 255), (255, 0, 0)).save(blue_red, quality=100)
    rows = color_histograms([red_blue, blue_red], stripes=2)
    assert rows.shape == (2, 256) and rows.dtype == torch.float32
    assert torch.allclose(rows[0], torch.from_numpy(color_histogram(Image.open(red_blue), stripes=2)))
    assert float(rows[0] @ rows[1]) < 0.2
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(DrfmError, match="broken.png"):
        color_histograms([red_blue, broken])


def settings(**changes) -> dict:
    labels = load_config("drfm", [])["labels"]
    labels.update({"k1": 3, "k2": 1, "eps": 0.5, "min_samples": 2, "standardize": False, **changes})
    return labels


def test_color_weight_joins_the_histograms_to_the_clustered_features():
    # Network features without structure (random), colour histograms in 4 groups of 3: with
    # color_weight 0 the colours are ignored; weighted in, they recover the groups.
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(4), 3)
    network = F.normalize(torch.tensor(rng.standard_normal((12, 64)), dtype=torch.float32), dim=1)
    colours = F.normalize(torch.tensor(np.eye(16)[ids] + 0.05 * rng.random((12, 16)), dtype=torch.float32), dim=1)
    without, _, _ = cluster_with_settings(network, settings(color_weight=0.0), color=colours)
    weighted, _, _ = cluster_with_settings(network, settings(color_weight=2.0), color=colours)
    assert label_quality(without, ids)["f1"] < 0.5
    assert label_quality(weighted, ids)["f1"] == 1.0
    with pytest.raises(DrfmError, match="color_weight"):
        cluster_with_settings(network, settings(color_weight=1.0))


@pytest.mark.parametrize("mode", ["cpg", "dual", "sr", "all"])
def test_every_label_mode_passes_the_colour_rows_of_the_images_it_clusters(mode):
    # HR images 0-5 and LR images 6-11 of 3 people (ids 0, 0, 1, 1, 2, 2 each), network features
    # uninformative: the colours alone must give the clusters, row for row in every mode (CPG then
    # labels LR images by the network features, which these colours do not reach).
    rng = np.random.default_rng(1)
    ids = np.tile(np.repeat(np.arange(3), 2), 2)
    origin = np.repeat([0, 1], 6)
    network = F.normalize(torch.tensor(rng.standard_normal((12, 64)), dtype=torch.float32), dim=1)
    colours = F.normalize(torch.tensor(np.eye(8)[ids] + 0.05 * rng.random((12, 8)), dtype=torch.float32), dim=1)
    result = assign_pseudo_labels(settings(mode=mode, color_weight=4.0, t=1.0), network, network, origin, ids,
                                  color=colours)
    clustered = (result.labels >= 0) & ((origin == 0) | (mode != "cpg"))
    assert clustered[origin == 0].all()
    assert label_quality(result.labels[clustered], ids[clustered])["precision"] == 1.0
