"""A small synthetic world of stylised people for `drfm demo`, written in the MLR manifest format.

Every person owns an appearance: skin, hair, upper- and lower-body clothing colours (drawn from a
small palette and shared within "look-alike groups", so coarse colours alone are ambiguous), a
clothing pattern (plain, horizontal or vertical stripes, checks, chest print) and fine details (a
small bag on one side with a strap, shoes, a belt, a thin collar line, a small logo). Those details
are a few pixels wide at high resolution and vanish when the low-resolution (LR) camera's images are
down-sampled, which is what makes cross-resolution re-identification hard in this world.

Each image adds camera-specific lighting and background, viewpoint jitter (shift, scale, shear,
left/right mirror, stride and arm swing), random partial occlusion and slight noise. All drawing is
numpy-vectorised over the images of one person; the whole default world (80 people x 3 cameras x
4 images) takes a few seconds of CPU time. The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from drfm.data.datasets.mlr import MANIFEST_NAME, entry_order, manifest_entry, write_manifest
from drfm.data.downsampling import INTERPOLATION, downsample
from drfm.data.image_io import load_image
from drfm.errors import DrfmError
from drfm.utils.io import atomic_path

PATTERNS = ("plain", "hstripes", "vstripes", "checks", "print")

# Coarse clothing colours (RGB in [0, 1]); several people share an upper+lower pair.
CLOTHING_PALETTE = np.array(
    [
        [0.70, 0.12, 0.12],  # red
        [0.15, 0.25, 0.62],  # blue
        [0.12, 0.14, 0.24],  # navy
        [0.20, 0.45, 0.22],  # green
        [0.50, 0.50, 0.52],  # grey
        [0.10, 0.10, 0.10],  # black
        [0.88, 0.88, 0.84],  # white
    ],
    dtype=np.float32,
)
SKIN_PALETTE = np.array(
    [[0.96, 0.80, 0.69], [0.87, 0.67, 0.52], [0.68, 0.47, 0.33], [0.45, 0.30, 0.20]], dtype=np.float32
)
HAIR_PALETTE = np.array(
    [[0.08, 0.06, 0.05], [0.35, 0.20, 0.10], [0.75, 0.60, 0.30], [0.55, 0.55, 0.55], [0.55, 0.20, 0.10]],
    dtype=np.float32,
)
# Vivid colours for the fine details (pattern, bag, shoes, belt, collar, logo).
DETAIL_PALETTE = np.array(
    [
        [0.95, 0.85, 0.10],  # yellow
        [0.95, 0.50, 0.05],  # orange
        [0.90, 0.20, 0.60],  # pink
        [0.10, 0.75, 0.80],  # cyan
        [0.55, 0.25, 0.75],  # purple
        [0.35, 0.80, 0.20],  # lime
        [0.98, 0.98, 0.98],  # white
        [0.05, 0.05, 0.05],  # black
        [0.55, 0.33, 0.15],  # brown
        [0.85, 0.10, 0.10],  # red
        [0.10, 0.30, 0.85],  # blue
    ],
    dtype=np.float32,
)

SUPERSAMPLE = 2  # people are drawn at this multiple of the HR size, then box-averaged (anti-aliasing)
REF_W, REF_H = 64.0, 128.0  # body coordinates are in this reference frame, feet at (0, FEET_Y)
FEET_Y = 124.0


@dataclass(frozen=True)
class Identity:
    """One person's appearance. Colours are RGB triples in [0, 1]; lengths in reference pixels (64x128)."""

    group: int  # look-alike group: members share hair, clothing colours, sleeves and pattern type
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    long_hair: bool
    upper: tuple[float, float, float]
    lower: tuple[float, float, float]
    long_sleeves: bool
    pattern: str  # one of PATTERNS
    pattern_colour: tuple[float, float, float]
    pitch: float  # stripe / check period, or print radius - 1
    bag_side: int  # -1 left, +1 right, 0 no bag
    bag_colour: tuple[float, float, float]
    shoe_colour: tuple[float, float, float]
    belt_colour: tuple[float, float, float] | None
    collar_colour: tuple[float, float, float]
    logo_colour: tuple[float, float, float] | None


@dataclass(frozen=True)
class Camera:
    """One camera: lighting, preferred viewpoint and a background wider than the image (float32 (h, w', 3))."""

    gain: np.ndarray  # (3,) per-channel colour gain
    gamma: float
    brightness: float
    mirror_prob: float
    scale_mean: float
    background: np.ndarray
    occluder_colour: np.ndarray  # (3,)


@dataclass(frozen=True)
class Views:
    """Per-image viewpoint and occlusion parameters for a batch of B images (fields shape (B,) unless noted).

    Shifts, stride and arm swing are in reference pixels; `occ_x0..occ_y1` is an occluding box in
    [0, 1] image fractions (empty when x0 == x1), painted in `occ_colour`.
    """

    shift_x: np.ndarray
    shift_y: np.ndarray
    scale: np.ndarray
    shear: np.ndarray
    mirror: np.ndarray  # +1 or -1
    stride: np.ndarray
    arm_swing: np.ndarray
    occ_x0: np.ndarray
    occ_x1: np.ndarray
    occ_y0: np.ndarray
    occ_y1: np.ndarray
    occ_colour: np.ndarray  # (B, 3) RGB in [0, 1]

    @classmethod
    def neutral(cls, n: int) -> "Views":
        """`n` identical front views: centred, scale 1, no shear, mirror or occlusion."""
        zeros, ones = np.zeros(n, np.float32), np.ones(n, np.float32)
        no_box = (zeros, zeros, zeros, zeros, np.zeros((n, 3), np.float32))
        return cls(zeros, zeros, ones, zeros, ones, zeros + 2.0, zeros, *no_box)


def _colour(palette: np.ndarray, index: int) -> tuple[float, float, float]:
    """Row `index` of `palette` as a tuple of Python floats."""
    return tuple(float(c) for c in palette[index])


def sample_identities(num_people: int, rng: np.random.Generator, group_size: int = 4) -> list[Identity]:
    """Draw `num_people` identities in look-alike groups of about `group_size` people.

    A group shares its coarse look: hair colour, upper and lower clothing colours, sleeve length and
    pattern type and colour. Members differ only in skin tone, hair length and fine details: pattern
    pitch (or print size), bag side and colour, shoes, belt, collar and small logo.
    """
    num_groups = max(1, num_people // group_size)
    n_cloth, n_det = len(CLOTHING_PALETTE), len(DETAIL_PALETTE)
    pairs = [(u, low) for u in range(n_cloth) for low in range(n_cloth) if u != low]
    group_looks = []
    for pair in rng.choice(len(pairs), size=num_groups, replace=num_groups > len(pairs)):
        upper_i, lower_i = pairs[pair]
        contrasting = np.flatnonzero(np.abs(DETAIL_PALETTE - CLOTHING_PALETTE[upper_i]).sum(axis=1) > 0.6)
        group_looks.append(
            {
                "hair": _colour(HAIR_PALETTE, int(rng.integers(len(HAIR_PALETTE)))),
                "upper": _colour(CLOTHING_PALETTE, upper_i),
                "lower": _colour(CLOTHING_PALETTE, lower_i),
                "long_sleeves": bool(rng.random() < 0.5),
                "pattern": PATTERNS[int(rng.integers(len(PATTERNS)))],
                "pattern_colour": _colour(DETAIL_PALETTE, int(rng.choice(contrasting))),
            }
        )
    people = []
    for g in rng.permutation(num_people) % num_groups:
        people.append(
            Identity(
                group=int(g),
                skin=_colour(SKIN_PALETTE, int(rng.integers(len(SKIN_PALETTE)))),
                long_hair=bool(rng.random() < 0.3),
                pitch=float(rng.uniform(3.0, 6.0)),
                bag_side=int(rng.choice([-1, 0, 1], p=[0.4, 0.2, 0.4])),
                bag_colour=_colour(DETAIL_PALETTE, int(rng.integers(n_det))),
                shoe_colour=_colour(DETAIL_PALETTE, int(rng.integers(n_det))),
                belt_colour=_colour(DETAIL_PALETTE, int(rng.integers(n_det))) if rng.random() < 0.6 else None,
                collar_colour=_colour(DETAIL_PALETTE, int(rng.integers(n_det))),
                logo_colour=_colour(DETAIL_PALETTE, int(rng.integers(n_det))) if rng.random() < 0.7 else None,
                **group_looks[g],
            )
        )
    return people


def _background(height: int, width: int, rng: np.random.Generator, kind: int) -> np.ndarray:
    """A wall-and-floor scene with a texture (`kind` % 3: panels, bricks, tiles) and clutter boxes.

    Returns float32 (height, width, 3) in [0, 1]; lengths are drawn in units of `height`.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = (yy + 0.5) / height, (xx + 0.5) / height
    top, bottom, floor = rng.uniform(0.25, 0.85, size=(3, 3)).astype(np.float32)
    img = top + (bottom - top) * yy[..., None]
    period = rng.uniform(0.08, 0.2)
    if kind % 3 == 0:
        texture = 0.05 * np.sin(2 * np.pi * xx / period)
    elif kind % 3 == 1:
        course = np.floor(yy / (period / 2))
        mortar = (np.mod(yy, period / 2) < 0.012) | (np.mod(xx + 0.5 * period * course, period) < 0.012)
        texture = np.where(mortar, -0.12, 0.0)
    else:
        texture = 0.06 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    img += texture[..., None]
    horizon = rng.uniform(0.74, 0.84)
    depth = np.clip((yy - horizon) / (1 - horizon), 0, 1)
    tile_lines = np.mod(np.log1p(8 * depth) * 3, 1.0) < 0.08
    floor_img = floor * (0.8 + 0.3 * depth[..., None]) - 0.1 * tile_lines[..., None]
    img = np.where((yy > horizon)[..., None], floor_img, img)
    for _ in range(int(rng.integers(3, 6))):  # clutter: pillars, doors, signs, bins
        box_w = rng.uniform(0.05, 0.25)
        x0 = rng.uniform(0, width / height - box_w)
        y1 = rng.uniform(0.3, 1.0) if rng.random() < 0.4 else horizon + rng.uniform(0, 0.1)
        y0 = y1 - rng.uniform(0.1, 0.7)
        colour = rng.uniform(0.1, 0.95, size=3)
        colour = (0.5 * colour + 0.5 * colour.mean()).astype(np.float32)  # muted
        box = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x0 + box_w)
        img = np.where(box[..., None], colour * (0.9 + 0.1 * yy[..., None]), img)
    return np.clip(img, 0, 1).astype(np.float32)


def sample_cameras(num_cameras: int, hr_size: tuple[int, int], rng: np.random.Generator) -> list[Camera]:
    """Draw `num_cameras` cameras with lighting, viewpoint habits and a background for `hr_size` (w, h)."""
    w, h = hr_size
    cameras = []
    for c in range(num_cameras):
        background = _background(h, w + w // 2, rng, c)
        occluder = background.mean(axis=(0, 1)) + rng.uniform(-0.2, 0.2, 3)
        cameras.append(
            Camera(
                gain=rng.uniform(0.85, 1.12, size=3).astype(np.float32),
                gamma=float(rng.uniform(0.85, 1.2)),
                brightness=float(rng.uniform(-0.05, 0.05)),
                mirror_prob=float(rng.choice([0.2, 0.5, 0.8])),
                scale_mean=float(rng.uniform(0.9, 1.0)),
                background=background,
                occluder_colour=np.clip(occluder, 0, 1).astype(np.float32),
            )
        )
    return cameras


def sample_views(cameras: Sequence[Camera], rng: np.random.Generator, occlusion_prob: float = 0.25) -> Views:
    """Draw one random view per entry of `cameras` (the camera taking that image): viewpoint jitter, occlusion."""
    f32 = np.float32
    n = len(cameras)
    mirror_prob = np.array([c.mirror_prob for c in cameras])
    scale_mean = np.array([c.scale_mean for c in cameras])
    occluder = np.stack([c.occluder_colour for c in cameras])
    occluded = rng.random(n) < occlusion_prob
    from_left = rng.random(n) < 0.5
    width = rng.uniform(0.4, 1.0, n)
    height = rng.uniform(0.15, 0.35, n)
    y0 = rng.uniform(0.3, 0.95 - height)
    x0 = np.where(from_left, 0.0, 1.0 - width)
    return Views(
        shift_x=rng.uniform(-5, 5, n).astype(f32),
        shift_y=rng.uniform(-3, 2, n).astype(f32),
        scale=(scale_mean * rng.uniform(0.92, 1.06, n)).astype(f32),
        shear=rng.uniform(-0.08, 0.08, n).astype(f32),
        mirror=np.where(rng.random(n) < mirror_prob, -1.0, 1.0).astype(f32),
        stride=rng.uniform(0.0, 5.0, n).astype(f32),
        arm_swing=rng.uniform(-2.5, 2.5, n).astype(f32),
        occ_x0=np.where(occluded, x0, 0.0).astype(f32),
        occ_x1=np.where(occluded, x0 + width, 0.0).astype(f32),
        occ_y0=np.where(occluded, y0, 0.0).astype(f32),
        occ_y1=np.where(occluded, y0 + height, 0.0).astype(f32),
        occ_colour=np.clip(occluder + rng.uniform(-0.08, 0.08, (n, 3)), 0, 1).astype(f32),
    )


def _band(bx: np.ndarray, by: np.ndarray, x0, y0, x1, y1, half_width: float) -> np.ndarray:
    """Points within `half_width` (horizontally) of the line from (x0, y0) to (x1, y1), for y0 <= by <= y1.

    A slanted limb or strap; the endpoints' x may be (B, 1, 1) arrays (one value per view).
    """
    centre = x0 + (x1 - x0) * ((by - y0) * (1.0 / (y1 - y0)))
    return (by >= y0) & (by <= y1) & (np.abs(bx - centre) <= half_width)


class _Painter:
    """Paints body parts into a label map (B, H_s, W_s) of colour indices (0 = background).

    Body coordinates (bx, by) live in the 64x128 reference frame; each view's affine map (shift,
    scale, shear, mirror) is inverted per pixel. A part is evaluated only inside the pixel box that
    its reference-frame box can reach in any view of the batch, so small details cost little.
    """

    def __init__(self, views: Views, hs: int, ws: int) -> None:
        self.views = views
        self.hs, self.ws = hs, ws
        b = len(views.scale)
        self.labels = np.zeros((b, hs, ws), np.uint8)
        self.colours = [np.zeros(3, np.float32)]
        e = {k: getattr(views, k)[:, None, None] for k in ("shift_x", "shift_y", "scale", "shear", "mirror")}
        nx = ((np.arange(ws, dtype=np.float32) + 0.5) / ws * REF_W - REF_W / 2)[None, None, :]
        ny = ((np.arange(hs, dtype=np.float32) + 0.5) / hs * REF_H)[None, :, None]
        self.by = np.broadcast_to((ny - e["shift_y"] - FEET_Y) / e["scale"] + FEET_Y, (b, hs, ws))
        self.bx = e["mirror"] * (nx - e["shift_x"]) / e["scale"] - e["shear"] * (self.by - FEET_Y)

    def _pixel_box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        v = self.views
        rows = np.array([FEET_Y + v.scale * (y - FEET_Y) + v.shift_y for y in (y0, y1)]) / REF_H * self.hs
        sheared = v.shear[None, :] * (np.array([y0, y1])[:, None] - FEET_Y)
        lo, hi = x0 + sheared.min(axis=0), x1 + sheared.max(axis=0)
        xs = np.where(v.mirror > 0, [v.scale * lo, v.scale * hi], [-v.scale * hi, -v.scale * lo]) + v.shift_x
        cols = (xs + REF_W / 2) / REF_W * self.ws
        r0, r1 = max(0, int(np.floor(rows.min())) - 1), min(self.hs, int(np.ceil(rows.max())) + 2)
        c0, c1 = max(0, int(np.floor(cols.min())) - 1), min(self.ws, int(np.ceil(cols.max())) + 2)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def region(self, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray, Callable]:
        """Body coordinates (bx, by) of the pixels that `box` (x0, x1, y0, y1) can reach, and a paint function.

        `paint(mask, colour)` colours the pixels of the region where `mask` (shaped like bx) is true.
        """
        rs, cs = self._pixel_box(*box)
        labels = self.labels[:, rs, cs]

        def paint(mask: np.ndarray, colour) -> None:
            self.colours.append(np.asarray(colour, np.float32))
            labels[mask] = len(self.colours) - 1

        return self.bx[:, rs, cs], self.by[:, rs, cs], paint

    def draw(self, box: tuple[float, float, float, float], shape, colour) -> None:
        """Paint `colour` where `shape(bx, by)` is true; the shape must lie inside `box` (x0, x1, y0, y1)."""
        bx, by, paint = self.region(box)
        paint(shape(bx, by), colour)

    def composite(self, backgrounds: np.ndarray, supersample: int) -> np.ndarray:
        """Box-average the painted people by `supersample` over `backgrounds` (B, h, w, 3); add occluders.

        Each output pixel mixes the mean colour of its person sub-pixels with the background in
        proportion to the person's coverage (anti-aliased edges). Returns float32 (B, h, w, 3).
        """
        ss = supersample
        b, h, w, _ = backgrounds.shape
        palette = np.stack(self.colours)  # background label 0 is black, so it adds nothing
        colours = np.take(palette, self.labels, axis=0).reshape(b, h, ss, w * ss * 3)
        colour_rows = sum(colours[:, :, i] for i in range(ss)).reshape(b, h, w, ss, 3)
        person_sum = sum(colour_rows[..., j, :] for j in range(ss))
        inside = (self.labels > 0).view(np.uint8).reshape(b, h, ss, w * ss)
        inside_rows = sum(inside[:, :, i] for i in range(ss)).reshape(b, h, w, ss)
        coverage = sum(inside_rows[..., j] for j in range(ss))
        scale = np.float32(1.0 / (ss * ss))
        out = person_sum * scale + backgrounds * (1.0 - coverage * scale)[..., None]
        v = self.views
        occ_x = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :] / w
        occ_y = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None] / h
        occluded = (
            (occ_x >= v.occ_x0[:, None, None])
            & (occ_x < v.occ_x1[:, None, None])
            & (occ_y >= v.occ_y0[:, None, None])
            & (occ_y < v.occ_y1[:, None, None])
        )
        return np.where(occluded[..., None], v.occ_colour[:, None, None, :], out)


def draw_person(person: Identity, views: Views, backgrounds: np.ndarray) -> np.ndarray:
    """Draw `person` over `backgrounds` (B, h, w, 3) float32 in [0, 1], one image per view; same shape out.

    Parts are painted back to front at SUPERSAMPLE x the size, then averaged down (anti-aliasing);
    all lengths are reference-frame pixels (a 64x128 person frame).
    """
    _, h, w, _ = backgrounds.shape
    pt = _Painter(views, h * SUPERSAMPLE, w * SUPERSAMPLE)
    stride = views.stride[:, None, None]
    swing = views.arm_swing[:, None, None]
    smax, wmax = float(views.stride.max()), float(np.abs(views.arm_swing).max())
    if person.long_hair:
        pt.draw((-8.5, 8.5, 15, 40), lambda x, y: (np.abs(x) <= 8.5) & (y >= 15) & (y <= 40), person.hair)
    reach = 9.5 + smax
    legs = lambda x, y: _band(np.abs(x), y, 5.0, 74.0, 5.0 + stride, 120.0, 4.3)  # noqa: E731  (both, mirrored)
    pt.draw((-reach, reach, 74, 120), legs, person.lower)
    pt.draw((-11, 11, 66, 80), lambda x, y: (np.abs(x) <= 11.0) & (y >= 66) & (y <= 80), person.lower)
    for s in (-1.0, 1.0):  # shoes: half-ellipses pointing forward (+x)
        foot = s * (5.0 + stride) + 1.5
        inner, outer = s * 3.5 + 1.5, s * (11.0 + smax) + 1.5
        x, y, paint = pt.region((min(inner, outer), max(inner, outer), 117, FEET_Y))
        paint((((x - foot) / 5.5) ** 2 + ((y - FEET_Y) / 6.5) ** 2 <= 1.0) & (y >= 117.0), person.shoe_colour)
    sleeve_end = 64.0 if person.long_sleeves else 48.0
    for s in (-1.0, 1.0):
        hand_x = s * (16.0 + swing)
        x, y, paint = pt.region((min(s * 10.5, s * (20 + wmax)), max(s * 10.5, s * (20 + wmax)), 30.5, 71.0))
        arm_centre = s * 14.0 + (hand_x - s * 14.0) * ((y - 33.0) * (1.0 / 33.0))
        arm_offset = np.abs(x - arm_centre)
        paint((arm_offset <= 3.4) & (y >= 33.0) & (y <= sleeve_end), person.upper)
        forearm = (arm_offset <= 2.9) & (y > sleeve_end) & (y <= 66.0)
        paint(forearm | ((x - hand_x) ** 2 + (y - 68.0) ** 2 <= 2.8**2), person.skin)

    def torso(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        shoulder = np.sqrt(np.clip((y - 31.0) / 4.0, 0, 1))
        half_width = 8.0 + 5.0 * shoulder - 2.0 * np.clip((y - 35.0) / 33.0, 0, 1)
        return (y >= 31.0) & (y <= 69.0) & (np.abs(x) <= half_width)

    x, y, paint = pt.region((-13, 13, 31, 69))
    body = torso(x, y)
    paint(body, person.upper)
    p = person.pitch
    if person.pattern == "hstripes":
        paint(body & (y >= 36) & (np.mod(y - 36.0, p) < p / 2), person.pattern_colour)
    elif person.pattern == "vstripes":
        paint(body & (y >= 34) & (np.mod(x + 40.0, p) < p / 2), person.pattern_colour)
    elif person.pattern == "checks":
        checks = (np.mod(x + 40.0, 2 * p) < p) ^ (np.mod(y - 34.0, 2 * p) < p)
        paint(body & (y >= 34) & checks, person.pattern_colour)
    elif person.pattern == "print":
        radius, inner = 1.0 + p, p / 2.5  # print size is the identity's detail
        x, y, paint = pt.region((-radius, radius, 47.0 - radius, 47.0 + radius))
        paint(np.hypot(x, y - 47.0) <= radius, person.pattern_colour)
        paint((np.abs(x) <= inner) & (np.abs(y - 47.0) <= inner), person.upper)
    if person.logo_colour is not None:
        pt.draw(
            (-8.3, -4.7, 38.2, 41.8),
            lambda x, y: (np.abs(x + 6.5) <= 1.8) & (np.abs(y - 40.0) <= 1.8),
            person.logo_colour,
        )
    if person.belt_colour is not None:
        pt.draw((-11.5, 11.5, 66, 69), lambda x, y: (np.abs(x) <= 11.5) & (y >= 66.0) & (y <= 69.0), person.belt_colour)
        pt.draw((-1.5, 1.5, 66.5, 68.5), lambda x, y: (np.abs(x) <= 1.5) & (y >= 66.5) & (y <= 68.5), (0.85, 0.8, 0.5))
    pt.draw((-3.2, 3.2, 27, 32), lambda x, y: (np.abs(x) <= 3.2) & (y >= 27.0) & (y <= 32.0), person.skin)
    pt.draw(
        (-6, 6, 30.5, 37),
        lambda x, y: (np.abs(np.abs(x) * 0.9 - (y - 31.0)) <= 0.8) & (y >= 30.5) & (np.abs(x) <= 6.0),
        person.collar_colour,
    )
    if person.bag_side:
        s = float(person.bag_side)
        dark = 0.6 * np.asarray(person.bag_colour)
        pt.draw(
            (min(-s * 11, s * 16), max(-s * 11, s * 16), 31, 58),
            lambda x, y: _band(x, y, -s * 10.0, 32.0, s * 15.0, 57.0, 1.3),
            dark,
        )
        bag_box = (min(s * 12, s * 20), max(s * 12, s * 20), 56, 69)
        pt.draw(bag_box, lambda x, y: (x * s >= 12.0) & (x * s <= 20.0) & (y >= 56.0) & (y <= 69.0), person.bag_colour)
        pt.draw(bag_box, lambda x, y: (x * s >= 12.0) & (x * s <= 20.0) & (y >= 56.0) & (y <= 57.5), dark)
    pt.draw((-7, 7, 11, 29), lambda x, y: (x / 7.0) ** 2 + ((y - 20.0) / 9.0) ** 2 <= 1.0, person.skin)
    pt.draw(
        (-7.6, 7.6, 9.7, 17),
        lambda x, y: ((x / 7.6) ** 2 + ((y - 19.5) / 9.8) ** 2 <= 1.0) & (y <= 15.5 + 0.12 * x * x / 7.0),
        person.hair,
    )
    pt.draw(
        (-3.6, 3.6, 19.2, 20.8),
        lambda x, y: (np.abs(np.abs(x) - 2.8) <= 0.8) & (np.abs(y - 20.0) <= 0.8),
        (0.1, 0.08, 0.08),
    )
    return pt.composite(backgrounds, SUPERSAMPLE)


def render_person(
    person: Identity,
    cameras: Sequence[Camera],
    views: Views,
    rng: np.random.Generator,
    hr_size: tuple[int, int],
    noise: float = 0.012,
) -> np.ndarray:
    """Render `person` once per view, image i seen by `cameras[i]`: uint8 (B, h, w, 3) at `hr_size` (w, h).

    Draws over a random crop of each camera's background, applies the camera's lighting (gamma,
    per-channel gain, brightness; a little per-image jitter) and Gaussian noise of std `noise`
    (in [0, 1] intensity units).
    """
    w, h = hr_size
    n = len(cameras)
    offsets = rng.integers(0, [c.background.shape[1] - w + 1 for c in cameras])
    backgrounds = np.stack([c.background[:, o : o + w] for c, o in zip(cameras, offsets)])
    img = draw_person(person, views, backgrounds)
    gamma = np.array([c.gamma for c in cameras], np.float32)[:, None, None, None]
    gain = np.stack([c.gain for c in cameras])[:, None, None, :] * rng.uniform(0.95, 1.05, size=(n, 1, 1, 3))
    brightness = np.array([c.brightness for c in cameras])[:, None, None, None] + rng.uniform(-0.04, 0.04, (n, 1, 1, 1))
    np.power(img, gamma, out=img)
    img *= gain.astype(np.float32)
    img += brightness.astype(np.float32)
    img += np.float32(noise) * rng.standard_normal(size=img.shape, dtype=np.float32)
    img *= np.float32(255.0)
    return np.clip(np.rint(img, out=img), 0, 255, out=img).astype(np.uint8)


def _check_arguments(
    num_people: int,
    num_cameras: int,
    images_per_camera: int,
    lr_camera: int,
    train_fraction: float,
    hr_size: tuple[int, int],
    lr_scale_factors: Sequence[int],
) -> int:
    """Validate the generator's options; return the number of training identities."""
    if num_people < 2:
        raise DrfmError(f"demo world: num_people must be at least 2, got {num_people}")
    if num_cameras < 2:
        raise DrfmError(f"demo world: num_cameras must be at least 2 (one LR, one HR), got {num_cameras}")
    if images_per_camera < 1:
        raise DrfmError(f"demo world: images_per_camera must be at least 1, got {images_per_camera}")
    if not 0 <= lr_camera < num_cameras:
        raise DrfmError(f"demo world: lr_camera must be in 0..{num_cameras - 1}, got {lr_camera}")
    if min(hr_size) < 16:
        raise DrfmError(f"demo world: hr_size must be (width, height) of at least 16 pixels each, got {hr_size}")
    if not lr_scale_factors or any(int(r) != r or r < 2 for r in lr_scale_factors):
        raise DrfmError(f"demo world: lr_scale_factors must be integers >= 2, got {list(lr_scale_factors)}")
    num_train = round(num_people * train_fraction)
    if not 1 <= num_train <= num_people - 1:
        raise DrfmError(
            f"demo world: train_fraction {train_fraction} leaves no training or no test identity of {num_people}"
        )
    return num_train


def _prepare_out(out: Path) -> None:
    """Refuse to replace anything but an empty folder or a previously built dataset."""
    if out.is_symlink() or out.is_file():
        raise DrfmError(f"{out}: exists and is not a folder; choose another output path")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise DrfmError(f"{out}: folder is not empty and holds no manifest.json; refusing to replace it")


def generate_demo_world(
    out: str | Path,
    num_people: int = 80,
    num_cameras: int = 3,
    images_per_camera: int = 4,
    lr_camera: int = 2,
    train_fraction: float = 0.5,
    seed: int = 0,
    hr_size: tuple[int, int] = (64, 128),
    lr_scale_factors: Sequence[int] = (3, 4),
    progress: bool = False,
) -> dict:
    """Write a synthetic cross-resolution re-ID dataset to `out` (manifest.json + images/); return the manifest.

    `num_people` identities x `num_cameras` cameras x `images_per_camera` images; camera `lr_camera`
    images are rendered at `hr_size` (w, h) then down-sampled by a factor drawn per image from
    `lr_scale_factors`. The first `round(num_people * train_fraction)` identities are for training
    (all their images); for the rest, LR-camera images form the query and HR images the gallery.
    Pids are re-indexed 0..P-1 within train and within test. Written atomically; deterministic in `seed`.
    """
    if len(hr_size) != 2:
        raise DrfmError(f"demo world: hr_size must be (width, height), got {hr_size}")
    hr_size = (int(hr_size[0]), int(hr_size[1]))
    num_train = _check_arguments(
        num_people, num_cameras, images_per_camera, lr_camera, train_fraction, hr_size, lr_scale_factors
    )
    lr_scale_factors = sorted({int(r) for r in lr_scale_factors})
    out = Path(out)
    _prepare_out(out)
    root_seq = np.random.SeedSequence(seed)
    world_seq, *person_seqs = root_seq.spawn(num_people + 1)
    world_rng = np.random.default_rng(world_seq)
    people = sample_identities(num_people, world_rng)
    cameras = sample_cameras(num_cameras, hr_size, world_rng)
    entries = []
    with atomic_path(out) as tmp:
        for index in tqdm(range(num_people), desc="demo world", unit="person", disable=not progress):
            rng = np.random.default_rng(person_seqs[index])
            is_train = index < num_train
            pid = index if is_train else index - num_train
            image_cameras = [camera for camera in cameras for _ in range(images_per_camera)]
            views = sample_views(image_cameras, rng)
            images = render_person(people[index], image_cameras, views, rng, hr_size)
            for i, array in enumerate(images):
                camid, k = divmod(i, images_per_camera)
                is_lr = camid == lr_camera
                split = "train" if is_train else ("query" if is_lr else "gallery")
                image = Image.fromarray(array)
                r = int(rng.choice(lr_scale_factors)) if is_lr else 1
                if is_lr:
                    image = downsample(image, r)
                rel = f"images/{split}/c{camid}/{pid:04d}_c{camid}_{k:03d}.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                image.save(tmp / rel, format="PNG", compress_level=1)
                entry = manifest_entry(None, rel, pid, camid, r, split, is_lr)
                entry["width"], entry["height"] = image.size
                entries.append(entry)
        entries.sort(key=entry_order)
        manifest = write_manifest(
            tmp,
            entries,
            dataset="demo",
            source_root=None,
            seed=seed,
            lr_cameras=[lr_camera],
            scale_factors=lr_scale_factors,
            interpolation=INTERPOLATION,
            lr_height_threshold=None,
        )
    return manifest


def preview_grid(
    manifest_dir: str | Path, out_png: str | Path, people: int = 8, per_camera: int = 2, zoom: int = 2
) -> Path:
    """Tile the first `people` test identities of a built dataset into one PNG; return its path.

    One row per person, `per_camera` images per camera side by side (camera order); LR images are
    enlarged with nearest-neighbour to the HR size so their lost detail stays visible, and the whole
    grid is enlarged `zoom` times (nearest-neighbour). Written atomically.
    """
    if people < 1 or per_camera < 1 or zoom < 1:
        raise DrfmError(f"preview: people, per_camera and zoom must be at least 1, got {people}, {per_camera}, {zoom}")
    manifest_dir = Path(manifest_dir)
    manifest_path = manifest_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DrfmError(f"{manifest_path}: no manifest.json; build a dataset first")
    entries = json.loads(manifest_path.read_text())["entries"]
    test = [e for e in entries if e["split"] in ("query", "gallery")]
    if not test:
        raise DrfmError(f"{manifest_path}: dataset has no query or gallery image to preview")
    hr = [e for e in test if e["resolution"] == "HR"] or test
    cell_w, cell_h = max(e["width"] for e in hr), max(e["height"] for e in hr)
    pids = sorted({e["pid"] for e in test})[:people]
    cameras = sorted({e["camid"] for e in test})
    pad = 2
    cols = len(cameras) * per_camera
    grid = Image.new("RGB", (cols * (cell_w + pad) + pad, len(pids) * (cell_h + pad) + pad), (255, 255, 255))
    for row, pid in enumerate(pids):
        for c_index, camid in enumerate(cameras):
            shots = sorted((e for e in test if e["pid"] == pid and e["camid"] == camid), key=lambda e: e["path"])
            for k, entry in enumerate(shots[:per_camera]):
                tile = load_image(manifest_dir / entry["path"]).resize((cell_w, cell_h), Image.NEAREST)
                x = pad + (c_index * per_camera + k) * (cell_w + pad)
                grid.paste(tile, (x, pad + row * (cell_h + pad)))
    grid = grid.resize((grid.width * zoom, grid.height * zoom), Image.NEAREST)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        grid.save(tmp, format="PNG")
    return out_png
