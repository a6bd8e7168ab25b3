"""Stripe colour histograms (drfm.labels.color) and their use in the labelling step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from drfm.config import load_config
from drfm.errors import DrfmError
from drfm.labels.color import (calibrated_histograms, color_histogram, color_histograms, load_thumbnails, pixel_counts,
                               transfer_tables)
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


def test_transfer_table_by_hand():
    # Reference (group 0) red values: 10 twice, 20 twice; group 1: 50 once, 60 three times.
    # Cumulative shares: reference 0.5 at 10, 1.0 at 20; group 1 0.25 at 50, 1.0 at 60. So 50 -> 10
    # (the first reference value reaching 0.25) and 60 -> 20; green and blue (all 0) map 0 -> 0.
    thumbnails = np.zeros((8, 1, 1, 3), dtype=np.uint8)
    thumbnails[:, 0, 0, 0] = [10, 10, 20, 20, 50, 60, 60, 60]
    groups = np.repeat([0, 1], 4)
    counts = pixel_counts(thumbnails, groups, 2)
    assert counts.shape == (2, 3, 256) and counts[0, 0, 10] == 2 and counts[1, 0, 60] == 3 and counts[1, 1, 0] == 4
    tables = transfer_tables(counts)
    assert tables[1, 0, 50] == 10 and tables[1, 0, 60] == 20 and tables[1, 1, 0] == 0
    assert np.array_equal(tables[0, 0], np.arange(256)), "the reference group keeps its colours"


def test_calibration_undoes_another_cameras_colour_response():
    # The same 6 people seen by the HR camera and by a second camera whose response (a gain and a
    # gamma per channel, the kind benchmarks/camera_shift.py applies) is strictly increasing on
    # the values used: calibrated, the second camera's histograms equal the first one's and each
    # image finds its person in the other camera; as they are, the histograms differ.
    rng = np.random.default_rng(0)
    values = np.arange(40, 200, 8)           # 20 distinct levels, kept distinct by the response
    people = rng.choice(values, size=(6, 64, 32, 3)).astype(np.uint8)
    gains, gamma = np.array([1.15, 1.0, 0.8]), 1.3
    second = np.rint(255 * gains * (people / 255.0) ** gamma).astype(np.uint8)
    thumbnails, origin = np.concatenate([people, second]), np.repeat([0, 1], 6)
    raw = calibrated_histograms(thumbnails, origin, "none")
    calibrated = calibrated_histograms(thumbnails, origin, "resolution")
    assert torch.allclose(calibrated[6:], calibrated[:6]) and torch.equal(calibrated[:6], raw[:6])
    assert not torch.allclose(raw[6:], raw[:6], atol=0.1)
    assert (calibrated[6:] @ calibrated[:6].T).argmax(dim=1).tolist() == list(range(6))


def test_saturation_calibration_restores_a_washed_out_cameras_colours():
    # 6 people (a top and a bottom hue of 6, saturation 150-255, value 120-240) and the same pixels from a
    # second camera that halves every pixel's saturation. The per-channel RGB mapping cannot give the
    # colours back their saturation; mapping the saturation too brings each second-camera histogram
    # closer to its person's (mean cosine, by a margin), and the HR camera's own histograms stay as
    # they are.
    rng = np.random.default_rng(0)
    hsv = np.zeros((6, 64, 32, 3), dtype=np.uint8)
    hues = np.arange(6, dtype=np.uint8) * 42                      # 6 distinct hues, one top and one bottom each
    hsv[:, :32, :, 0], hsv[:, 32:, :, 0] = hues[:, None, None], np.roll(hues, 2)[:, None, None]
    hsv[..., 1] = rng.integers(150, 256, (6, 64, 32))
    hsv[..., 2] = rng.integers(120, 241, (6, 64, 32))
    washed = hsv.copy()
    washed[..., 1] //= 2
    to_rgb = lambda images: np.stack([np.asarray(Image.fromarray(image, "HSV").convert("RGB")) for image in images])
    thumbnails, origin = np.concatenate([to_rgb(hsv), to_rgb(washed)]), np.repeat([0, 1], 6)
    rgb_only = calibrated_histograms(thumbnails, origin, "resolution")
    saturation = calibrated_histograms(thumbnails, origin, "resolution_saturation")
    assert torch.equal(saturation[:6], rgb_only[:6])
    twin = lambda rows: float((rows[6:] * rows[:6]).sum(dim=1).mean())
    assert twin(saturation) > twin(rgb_only) + 0.03, (twin(saturation), twin(rgb_only))
    assert (saturation[6:] @ saturation[:6].T).argmax(dim=1).tolist() == list(range(6))
    assert calibrated_histograms(thumbnails[:0], origin[:0], "resolution_saturation").shape == (0, 6 * 128)


def test_color_histograms_with_groups_read_the_files_and_calibrate(tmp_path):
    paths = []
    for index, (top, bottom) in enumerate([((200, 40, 40), (40, 40, 200)), ((150, 30, 30), (30, 30, 150))]):
        paths.append(tmp_path / f"{index}.png")
        two_colour_person(top, bottom).save(paths[-1])
    thumbnails = load_thumbnails(paths)
    assert thumbnails.shape == (2, 64, 32, 3) and thumbnails.dtype == np.uint8
    origin = np.array([0, 1])
    assert torch.equal(color_histograms(paths, groups=origin), calibrated_histograms(thumbnails, origin, "resolution"))
    calibrated = color_histograms(paths, groups=origin)
    assert float(calibrated[0] @ calibrated[1]) == pytest.approx(1.0)   # the darker camera's colours mapped back
    assert float(color_histograms(paths)[0] @ color_histograms(paths)[1]) < 0.9


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
