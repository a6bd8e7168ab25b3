"""Stripe colour histograms: a hand-crafted clustering feature that a resolution change barely moves.

Down-sampling a picture keeps the colours of a person's clothes; ImageNet features of a small
backbone at 128x64 do not cluster people well enough on their own (README "Pseudo-labels on small
real data", finding 11). With `labels.color_weight` > 0 the labelling step joins these histograms
of each image's own file to the clustered network features (`drfm.labels.strategy`).

Per image: resized to 32 x 64 (width x height, bilinear), converted to HSV, cut into `stripes`
horizontal bands of equal height (top to bottom); per band a joint H x S x V histogram with
`bins` levels per channel (8 x 4 x 4 = 128 bins), its fractions square-rooted (Hellinger: the
dot product of two bands is their Bhattacharyya coefficient). Every band has unit norm; the
concatenation is divided by sqrt(stripes), so each row has unit norm.

Colour calibration (`labels.color_calibration: resolution`): when the LR images come from another
camera than the HR ones (CAVIAR), that camera's colour response (gain, gamma per channel) moves
every LR histogram and the clustering splits people by camera. Before the histograms, each group's
pixel values (the LR images', resized as above) are mapped per channel through the brightness
transfer function to the HR group (Javed et al., CVPR 2005): the value whose cumulative share of
the HR group's pixels equals its own cumulative share in its group. A monotone per-channel camera
response is undone exactly; where HR and LR come from the same cameras (down-sampled halves) the
mapping is close to the identity.

`labels.color_calibration: resolution_saturation` then maps the LR images' saturation the same way
(the HSV S channel of the calibrated pixels, onto the HR images' S distribution). A camera that
mixes its colour channels (washed-out colours, a cheap sensor) lowers every LR pixel's saturation,
which no per-channel RGB mapping can restore. On MLR-*-grey it raises drfm-cpu's epoch-0 label F
by 0.01-0.04, elsewhere it moves F by -0.02 to +0.01, and trained Rank-1 does not follow (README
finding 16): an option for a washed-out LR camera, not the presets' default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from drfm.data.image_io import load_image
from drfm.data.views import HR_ORIGIN, LR_ORIGIN

SIZE = (32, 64)           # (width, height) every image is resized to before the histogram
STRIPES = 6
BINS = (8, 4, 4)          # hue, saturation, value levels
NUM_GROUPS = max(HR_ORIGIN, LR_ORIGIN) + 1   # calibration groups: the images' origins, HR_ORIGIN the reference


def thumbnail(image: Image.Image) -> np.ndarray:
    """(64, 32, 3) uint8 RGB pixels of a PIL image resized to SIZE (bilinear): what the histogram counts."""
    return np.asarray(image.convert("RGB").resize(SIZE, Image.BILINEAR), dtype=np.uint8)


def color_histogram(image: Image.Image, stripes: int = STRIPES, bins: tuple[int, int, int] = BINS) -> np.ndarray:
    """(stripes * prod(bins),) float32 unit-norm stripe HSV histogram of an RGB PIL image."""
    return thumbnail_histogram(thumbnail(image), stripes, bins)


def thumbnail_histogram(rgb: np.ndarray, stripes: int = STRIPES, bins: tuple[int, int, int] = BINS) -> np.ndarray:
    """(stripes * prod(bins),) float32 unit-norm stripe HSV histogram of (64, 32, 3) uint8 `thumbnail` pixels."""
    return hsv_histogram(to_hsv(rgb), stripes, bins)


def to_hsv(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 HSV (PIL's scale, each channel 0-255) of (H, W, 3) uint8 RGB pixels."""
    return np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.uint8)


def hsv_histogram(hsv: np.ndarray, stripes: int = STRIPES, bins: tuple[int, int, int] = BINS) -> np.ndarray:
    """(stripes * prod(bins),) float32 unit-norm stripe histogram of (64, 32, 3) uint8 HSV pixels."""
    hsv = hsv.astype(np.int64)
    levels = [hsv[..., channel] * count // 256 for channel, count in enumerate(bins)]
    codes = (levels[0] * bins[1] + levels[1]) * bins[2] + levels[2]          # (64, 32) joint bin index
    band = np.repeat(np.arange(stripes), [len(rows) for rows in np.array_split(np.arange(SIZE[1]), stripes)])
    num_bins = bins[0] * bins[1] * bins[2]
    counts = np.bincount((band[:, None] * num_bins + codes).ravel(), minlength=stripes * num_bins)
    counts = counts.reshape(stripes, num_bins).astype(np.float64)
    fractions = counts / counts.sum(axis=1, keepdims=True)
    return (np.sqrt(fractions) / np.sqrt(stripes)).ravel().astype(np.float32)


def load_thumbnails(paths: Sequence[str | Path], progress: bool = False) -> np.ndarray:
    """(N, 64, 32, 3) uint8 `thumbnail` of every image file, in order; DrfmError naming the file
    for an unreadable image (`load_image`)."""
    rows = [thumbnail(load_image(path)) for path in tqdm(paths, desc="colour histograms", disable=not progress,
                                                         leave=False)]
    return np.stack(rows) if rows else np.empty((0, SIZE[1], SIZE[0], 3), dtype=np.uint8)


def pixel_counts(thumbnails: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """(num_groups, C, 256) int64: how many pixels of each group's (N,) `groups` thumbnails, (N, H, W, C)
    uint8, take each value, per channel (sums over shards add up: one all-reduce under torchrun)."""
    channels = thumbnails.shape[-1]
    counts = np.zeros((num_groups, channels, 256), dtype=np.int64)
    for group in range(num_groups):
        pixels = thumbnails[groups == group].reshape(-1, channels)
        for channel in range(channels):
            counts[group, channel] = np.bincount(pixels[:, channel], minlength=256)
    return counts


def transfer_tables(counts: np.ndarray, reference: int = 0) -> np.ndarray:
    """(G, C, 256) uint8 lookup tables from (G, C, 256) `pixel_counts`: per group and channel, the
    brightness transfer function onto group `reference`, value v -> the smallest u whose cumulative
    share of the reference's pixels reaches v's cumulative share of the group's own (the identity
    for the reference itself, and for a group without pixels)."""
    tables = np.tile(np.arange(256, dtype=np.uint8), (*counts.shape[:2], 1))
    reference_share = np.cumsum(counts[reference], axis=1) / np.maximum(counts[reference].sum(axis=1, keepdims=True), 1)
    for group in range(len(counts)):
        total = counts[group].sum(axis=1, keepdims=True)
        if group == reference or not total.all() or not counts[reference].sum():
            continue
        share = np.cumsum(counts[group], axis=1) / total
        for channel in range(counts.shape[1]):
            mapped = np.searchsorted(reference_share[channel], share[channel] - 1e-12, side="left")
            tables[group, channel] = np.minimum(mapped, 255)
    return tables


def apply_tables(pixels: np.ndarray, tables: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 `pixels`, each image mapped through its (N,) `groups` row of (G, C, 256)
    `transfer_tables`."""
    channels = np.arange(pixels.shape[-1])
    return tables[groups[:, None, None, None], channels, pixels.astype(np.int64)]


def hsv_thumbnails(rgb: np.ndarray) -> np.ndarray:
    """(N, 64, 32, 3) uint8 `to_hsv` of (N, 64, 32, 3) uint8 RGB thumbnails."""
    return np.stack([to_hsv(image) for image in rgb]) if len(rgb) else np.empty_like(rgb)


def hsv_histograms(hsv: np.ndarray, stripes: int = STRIPES, bins: tuple[int, int, int] = BINS) -> torch.Tensor:
    """(N, stripes * prod(bins)) float32 `hsv_histogram` of (N, 64, 32, 3) uint8 HSV thumbnails."""
    rows = [hsv_histogram(image, stripes, bins) for image in hsv]
    return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, stripes * int(np.prod(bins)))


def calibrated_histograms(thumbnails: np.ndarray, origin: np.ndarray, calibration: str,
                          stripes: int = STRIPES, bins: tuple[int, int, int] = BINS,
                          total_counts: Callable[[np.ndarray], np.ndarray] | None = None) -> torch.Tensor:
    """(N, stripes * prod(bins)) float32 `thumbnail_histogram` of (N, 64, 32, 3) thumbnails under
    labels.color_calibration: "none" as they are, "resolution" with the LR images' pixels (by the
    (N,) HR_ORIGIN / LR_ORIGIN `origin`) mapped onto the HR images' colours per RGB channel,
    "resolution_saturation" with their HSV saturation then mapped onto the HR images' too.
    `total_counts`, when these thumbnails are one process's shard, turns its (NUM_GROUPS, C, 256)
    `pixel_counts` into the sum over all shards."""
    groups = np.asarray(origin, dtype=np.int64)

    def calibrated(pixels: np.ndarray) -> np.ndarray:
        counts = pixel_counts(pixels, groups, NUM_GROUPS)
        return apply_tables(pixels, transfer_tables(total_counts(counts) if total_counts else counts,
                                                    reference=HR_ORIGIN), groups)

    rgb = thumbnails if calibration == "none" else calibrated(thumbnails)
    hsv = hsv_thumbnails(rgb)
    if calibration == "resolution_saturation":
        hsv[..., 1:2] = calibrated(hsv[..., 1:2])
    return hsv_histograms(hsv, stripes, bins)


def color_histograms(paths: Sequence[str | Path], stripes: int = STRIPES, bins: tuple[int, int, int] = BINS,
                     progress: bool = False, groups: np.ndarray | None = None) -> torch.Tensor:
    """(N, stripes * prod(bins)) float32 tensor: `color_histogram` of every image file, in order;
    with the (N,) HR_ORIGIN / LR_ORIGIN `groups` of the images, the LR images' pixels are first
    calibrated onto the HR images' colours (`calibrated_histograms`). DrfmError naming the file for an
    unreadable image (`load_image`)."""
    thumbnails = load_thumbnails(paths, progress)
    if groups is None:
        return hsv_histograms(hsv_thumbnails(thumbnails), stripes, bins)
    return calibrated_histograms(thumbnails, groups, "resolution", stripes, bins)
