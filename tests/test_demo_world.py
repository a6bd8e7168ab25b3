"""The demo world: MLR manifest format, determinism, real identities, fine details lost at low resolution."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.data import demo_world
from drfm.data.demo_world import Views, draw_person, generate_demo_world, preview_grid, sample_identities
from drfm.data.downsampling import downsample
from drfm.data.registry import read_dataset
from drfm.errors import DrfmError


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    """A 24-person, 3-camera, 2-images-per-camera world (12 test identities), built once."""
    out = tmp_path_factory.mktemp("demo") / "world"
    return out, generate_demo_world(out, num_people=24, images_per_camera=2, seed=0)


def test_same_seed_gives_identical_bytes_and_another_seed_other_images(tmp_path):
    options = dict(num_people=6, num_cameras=2, images_per_camera=1, lr_camera=0)
    generate_demo_world(tmp_path / "a", seed=3, **options)
    generate_demo_world(tmp_path / "b", seed=3, **options)
    generate_demo_world(tmp_path / "c", seed=4, **options)
    a, b, c = (tree_bytes(tmp_path / name) for name in "abc")
    assert a == b
    images = [path for path in a if path.endswith(".png")]
    assert len(images) == 12 and set(images) == {path for path in c if path.endswith(".png")}
    assert all(a[path] != c[path] for path in images)


def test_counts_pids_and_splits_follow_the_protocol(tmp_path):
    out = tmp_path / "w"
    manifest = generate_demo_world(out, num_people=10, num_cameras=3, images_per_camera=2, lr_camera=1,
                                   train_fraction=0.4, seed=1)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["format"] == "drfm-mlr/1" and manifest["dataset"] == "demo"
    assert manifest["source_root"] is None and manifest["lr_cameras"] == [1] and manifest["seed"] == 1
    assert manifest["scale_factors"] == [3, 4] and manifest["lr_height_threshold"] is None
    assert manifest["counts"] == {
        "train": {"images": 4 * 3 * 2, "ids": 4},
        "query": {"images": 6 * 1 * 2, "ids": 6},
        "gallery": {"images": 6 * 2 * 2, "ids": 6},
    }
    entries = manifest["entries"]
    by_split = {split: [e for e in entries if e["split"] == split] for split in ("train", "query", "gallery")}
    assert {e["pid"] for e in by_split["train"]} == set(range(4))
    assert {e["pid"] for e in by_split["query"]} == {e["pid"] for e in by_split["gallery"]} == set(range(6))
    assert {e["camid"] for e in by_split["train"]} == {0, 1, 2}
    assert all(e["camid"] == 1 and e["resolution"] == "LR" for e in by_split["query"])
    assert all(e["camid"] != 1 and e["resolution"] == "HR" and e["r"] == 1 for e in by_split["gallery"])
    assert all(e["source"] is None for e in entries)
    order = [(("train", "query", "gallery").index(e["split"]), e["pid"], e["camid"], e["path"]) for e in entries]
    assert order == sorted(order)
    splits = read_dataset("mlr", out)
    assert (len(splits.train), len(splits.query), len(splits.gallery)) == (24, 12, 24)
    assert splits.lr_cameras == (1,) and splits.name == "mlr-demo"


def test_lr_images_are_smaller_by_their_recorded_factor(tmp_path):
    out = tmp_path / "w"
    manifest = generate_demo_world(out, num_people=4, num_cameras=2, images_per_camera=6, lr_camera=0,
                                   train_fraction=0.5, hr_size=(48, 128), lr_scale_factors=(2, 3, 4), seed=2)
    factors = set()
    for entry in manifest["entries"]:
        r = entry["r"]
        if entry["camid"] == 0:
            assert entry["resolution"] == "LR" and r in (2, 3, 4) and entry["interpolation"] == "bicubic-antialias"
            factors.add(r)
        else:
            assert entry["resolution"] == "HR" and r == 1 and entry["interpolation"] is None
        assert (entry["width"], entry["height"]) == (round(48 / r), round(128 / r))
        with Image.open(out / entry["path"]) as image:
            assert image.size == (entry["width"], entry["height"]) and image.format == "PNG"
    assert len(factors) >= 2  # r is drawn per image


def grey_world_pixels(path: Path) -> np.ndarray:
    """16x32 pixels of the image's central half-width strip, each channel divided by its mean."""
    pixels = np.asarray(Image.open(path).convert("RGB").resize((16, 32), Image.BILINEAR), np.float32)[:, 4:12]
    return (pixels / (pixels.mean(axis=(0, 1), keepdims=True) + 1.0)).ravel()


def test_identities_are_recognised_across_two_hr_cameras_far_above_chance(world):
    out, manifest = world
    gallery = [e for e in manifest["entries"] if e["split"] == "gallery"]
    rates = []
    for probe_cam, target_cam in ((0, 1), (1, 0)):
        probes = [e for e in gallery if e["camid"] == probe_cam]
        targets = [e for e in gallery if e["camid"] == target_cam]
        p = np.stack([grey_world_pixels(out / e["path"]) for e in probes])
        t = np.stack([grey_world_pixels(out / e["path"]) for e in targets])
        nearest = ((p[:, None] - t[None]) ** 2).sum(axis=2).argmin(axis=1)
        rates.append(np.mean([probes[i]["pid"] == targets[j]["pid"] for i, j in enumerate(nearest)]))
    chance = 1 / manifest["counts"]["gallery"]["ids"]
    assert chance == pytest.approx(1 / 12)
    assert min(rates) >= 3.5 * chance


def test_lookalike_groups_share_coarse_colours_but_no_two_people_are_equal():
    people = sample_identities(40, np.random.default_rng(0))
    groups: dict[int, list] = {}
    for person in people:
        groups.setdefault(person.group, []).append(person)
    assert len(groups) == 10 and all(len(members) == 4 for members in groups.values())
    for members in groups.values():
        looks = {(m.upper, m.lower, m.hair, m.long_sleeves, m.pattern, m.pattern_colour) for m in members}
        assert len(looks) == 1
    assert len({(p.upper, p.lower) for p in people}) <= 10
    assert len({dataclasses.replace(p, group=0) for p in people}) == 40


def hr_and_lr_distances(people) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RMS pixel distance between every pair drawn in the same neutral view on a flat background,
    at 64x128 and after x4 down-sampling and bicubic up-sampling back; plus whether the pair is look-alike."""
    background = np.full((1, 128, 64, 3), 0.5, np.float32)
    views = Views.neutral(1)
    hr, lr = [], []
    for person in people:
        pixels = draw_person(person, views, background)[0]
        hr.append(pixels)
        image = Image.fromarray(np.uint8(np.rint(pixels * 255)))
        lr.append(np.asarray(downsample(image, 4).resize((64, 128), Image.BICUBIC), np.float32) / 255)
    i, j = np.triu_indices(len(people), k=1)
    hr, lr = np.stack(hr), np.stack(lr)
    d_hr = np.sqrt(((hr[i] - hr[j]) ** 2).mean(axis=(1, 2, 3)))
    d_lr = np.sqrt(((lr[i] - lr[j]) ** 2).mean(axis=(1, 2, 3)))
    groups = np.array([p.group for p in people])
    return d_hr, d_lr, groups[i] == groups[j]


def details_tell_lookalikes_apart_at_hr_only(people) -> bool:
    """Every look-alike pair differs clearly at HR, and look-alikes lose a larger share of their
    difference to down-sampling than people of different groups (their differences are fine details)."""
    d_hr, d_lr, same = hr_and_lr_distances(people)
    if d_hr[same].min() < 0.04:
        return False
    ratio_same = np.median(d_lr[same] / d_hr[same])
    ratio_other = np.median(d_lr[~same] / d_hr[~same])
    return bool(ratio_same < 0.8 and ratio_same < ratio_other - 0.08)


def test_fine_details_separate_lookalikes_at_high_resolution_only():
    people = sample_identities(40, np.random.default_rng(0))
    assert details_tell_lookalikes_apart_at_hr_only(people)
    # The check fails when the details are absent (the same for everyone).
    no_details = [
        dataclasses.replace(p, pitch=4.0, bag_side=0, belt_colour=None, logo_colour=None,
                            collar_colour=(0.0, 0.0, 0.0), shoe_colour=(0.0, 0.0, 0.0))
        for p in people
    ]
    assert not details_tell_lookalikes_apart_at_hr_only(no_details)


def test_bad_options_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(DrfmError, match="lr_camera"):
        generate_demo_world(tmp_path / "w", num_people=4, num_cameras=2, lr_camera=2)
    with pytest.raises(DrfmError, match="train_fraction"):
        generate_demo_world(tmp_path / "w", num_people=4, train_fraction=1.0)
    with pytest.raises(DrfmError, match="lr_scale_factors"):
        generate_demo_world(tmp_path / "w", num_people=4, lr_scale_factors=(1, 2))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DrfmError, match="refusing"):
        generate_demo_world(foreign, num_people=4)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "w").exists()


def test_failure_midway_leaves_nothing_and_keeps_an_earlier_build(tmp_path, monkeypatch):
    out = tmp_path / "w"
    generate_demo_world(out, num_people=4, num_cameras=2, images_per_camera=1, lr_camera=0)
    before = tree_bytes(out)
    calls = []

    def failing_render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real_render(*args, **kwargs)

    real_render = demo_world.render_person
    monkeypatch.setattr(demo_world, "render_person", failing_render)
    with pytest.raises(RuntimeError):
        generate_demo_world(out, num_people=4, num_cameras=2, images_per_camera=1, lr_camera=0, seed=9)
    assert tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_preview_grid_tiles_people_by_camera(world, tmp_path):
    out, _ = world
    png = preview_grid(out, tmp_path / "preview.png", people=3, per_camera=2, zoom=2)
    with Image.open(png) as image:
        # 3 cameras x 2 images of 64x128 with 2-pixel gaps, 3 rows, then doubled.
        assert image.size == (2 * (6 * 66 + 2), 2 * (3 * 130 + 2))
        pixels = np.asarray(image.convert("RGB"))
    assert pixels[:4].min() == 255  # top padding is white
    assert pixels[4:260, 4:132].std() > 10  # the first tile holds a picture
    with pytest.raises(DrfmError, match="manifest"):
        preview_grid(tmp_path / "nothing", tmp_path / "p.png")
