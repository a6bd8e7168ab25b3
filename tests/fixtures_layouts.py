"""Writers of tiny datasets in the real release layouts (plain functions, reusable by any test).

Every image is 8 wide x 16 high unless said otherwise, with content that differs per file so that
outputs of different files differ too.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 8, 16


def write_image(path: Path, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """Write an RGB image of `size` (width, height) whose pixels depend on `path`'s name; return path."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_market(root: Path, train_pids=(2, 7), test_pids=(1, 3), cameras=(1, 2)) -> Path:
    """Market-1501 layout: one image per (pid, camera) in train, query and test, plus junk,
    a distractor and a Thumbs.db in bounding_box_test. Returns root."""
    for pid in train_pids:
        for cam in cameras:
            write_image(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{100 * pid + cam:06d}_01.jpg")
    for pid in test_pids:
        for cam in cameras:
            write_image(root / "query" / f"{pid:04d}_c{cam}s1_{100 * pid + cam:06d}_00.jpg")
            write_image(root / "bounding_box_test" / f"{pid:04d}_c{cam}s2_{100 * pid + cam:06d}_01.jpg")
    write_image(root / "bounding_box_test" / "-1_c1s1_000050_02.jpg")
    write_image(root / "bounding_box_test" / "0000_c2s1_000060_03.jpg")
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")
    return root


def write_viper(root: Path, people: int = 6) -> Path:
    """VIPeR layout: cam_a/PPP_ANGLE.bmp and cam_b/PPP_ANGLE.bmp for persons 0..people-1. Returns root."""
    for pid in range(people):
        write_image(root / "cam_a" / f"{pid:03d}_{(45 * pid) % 360}.bmp")
        write_image(root / "cam_b" / f"{pid:03d}_{(90 + 45 * pid) % 360}.bmp")
    return root


def write_prid(root: Path, shared: int = 4, a_only=(201, 202), b_only=(386, 1201, 1202)) -> Path:
    """PRID 2011 layout under root/single_shot: persons 1..shared in both cameras, the others in one.
    Returns root (the `prid_2011` folder)."""
    for pid in list(range(1, shared + 1)) + list(a_only):
        write_image(root / "single_shot" / "cam_a" / f"person_{pid:04d}.png", size=(WIDTH, HEIGHT))
    for pid in list(range(1, shared + 1)) + list(b_only):
        write_image(root / "single_shot" / "cam_b" / f"person_{pid:04d}.png", size=(WIDTH, HEIGHT))
    return root


def write_caviar(root: Path, two_camera=(1, 2, 3, 4), one_camera=(5, 6), per_camera: int = 2) -> Path:
    """CAVIAR4REID layout root/CAVIARa/PPPPNNN.jpg: two-camera people get indices 001.. and 011..,
    one-camera people only 001..; `per_camera` images per camera. Returns root (`CAVIAR4REID`)."""
    for pid in two_camera:
        for index in list(range(1, per_camera + 1)) + list(range(11, 11 + per_camera)):
            write_image(root / "CAVIARa" / f"{pid:04d}{index:03d}.jpg")
    for pid in one_camera:
        for index in range(1, per_camera + 1):
            write_image(root / "CAVIARa" / f"{pid:04d}{index:03d}.jpg")
    return root


def write_cuhk03_openreid(root: Path, people: int = 6, test_sets=((1, 4), (0, 5))) -> Path:
    """open-reid CUHK03 layout: images/PPPPPPPP_CC_IIII.jpg (two per person and view), splits.json
    with one split per entry of `test_sets`, meta.json. Returns root."""
    identities = []
    for pid in range(people):
        views = []
        for cam in (0, 1):
            names = [f"{pid:08d}_{cam:02d}_{index:04d}.jpg" for index in range(2)]
            for name in names:
                write_image(root / "images" / name)
            views.append(names)
        identities.append(views)
    splits = [
        {"trainval": sorted(set(range(people)) - set(test)), "query": list(test), "gallery": list(test)}
        for test in test_sets
    ]
    (root / "splits.json").write_text(json.dumps(splits))
    (root / "meta.json").write_text(json.dumps({"name": "cuhk03", "num_cameras": 2, "identities": identities}))
    return root


def write_cuhk03_torchreid(root: Path, pairs=(3, 2), test=((1, 2), (2, 1))) -> Path:
    """torchreid CUHK03 layout: images_labeled/ and images_detected/ with A_PPP_V_II.png (pairs[a-1]
    people in camera pair a, one image per view) and splits_classic_{labeled,detected}.json whose
    single split's query holds the (pair, person) of `test`. Returns root."""
    for variant in ("labeled", "detected"):
        for pair, count in enumerate(pairs, start=1):
            for person in range(1, count + 1):
                for view, index in ((1, 1), (2, 6)):
                    write_image(root / f"images_{variant}" / f"{pair}_{person:03d}_{view}_{index:02d}.png")
        query = [
            [f"/elsewhere/images_{variant}/{pair}_{person:03d}_{view}_{index:02d}.png", n, view - 1]
            for n, (pair, person) in enumerate(test)
            for view, index in ((1, 1), (2, 6))
        ]
        split = {"train": [], "query": query, "gallery": query}
        (root / f"splits_classic_{variant}.json").write_text(json.dumps([split]))
    return root


# Person crops as redistributed in PETA (3DPeS, i-LIDS, TownCentre): one flat folder per dataset,
# person id first in every name, PETA's attribute file Label.txt beside the images.

PETA_PEOPLE = {1: 4, 2: 2, 3: 1, 5: 5, 7: 3, 9: 2}  # pid -> images: odd and even counts, one single
PETA_IMAGES = sum(PETA_PEOPLE.values())


def _write_peta_extras(root: Path) -> None:
    """PETA's Label.txt and an unrelated non-image file, both to be ignored by the readers."""
    (root / "Label.txt").write_text("".join(f"{pid} upperBodyBlue lowerBodyBlack\n" for pid in PETA_PEOPLE))
    (root / "Thumbs.db").write_bytes(b"not an image")


def write_threedpes(root: Path, people: dict[int, int] = PETA_PEOPLE, b_images=((2, 11), (5, 13))) -> Path:
    """3DPeS layout: PID_SEQ_FRAME_N_RGB.bmp, `people[pid]` images per person, of which the ones in
    `b_images` ((pid, seq): one image each, counted in people[pid]) are PID_B_SEQ_FRAME_N_RGB.bmp.
    Returns root."""
    b_by_pid = dict(b_images)
    for pid, count in people.items():
        for k in range(count):
            if k == 0 and pid in b_by_pid:
                write_image(root / f"{pid}_B_{b_by_pid[pid]}_FRAME_{100 + k}_RGB.bmp")
            else:
                write_image(root / f"{pid}_{10 + k % 3}_FRAME_{100 + k}_RGB.bmp")
    _write_peta_extras(root)
    return root


def write_ilids(root: Path, people: dict[int, int] = PETA_PEOPLE) -> Path:
    """i-LIDS layout: PPPP_NNN.jpg, `people[pid]` images per person (NNN from 001). Returns root."""
    for pid, count in people.items():
        for k in range(1, count + 1):
            write_image(root / f"{pid:04d}_{k:03d}.jpg")
    _write_peta_extras(root)
    return root


def write_towncentre(root: Path, people: dict[int, int] = PETA_PEOPLE) -> Path:
    """TownCentre layout: PID_FRAME.jpg, `people[pid]` consecutive track frames (every 9th) per
    person. Returns root."""
    for pid, count in people.items():
        for k in range(count):
            write_image(root / f"{pid}_{50 * pid + 9 * k}.jpg")
    _write_peta_extras(root)
    return root
