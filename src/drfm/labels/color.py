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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from drfm.data.image_io import load_image

SIZE = (32, 64)           # (width, height) every image is resized to before the histogram
STRIPES = 6
BINS = (8, 4, 4)          # hue, saturation, value levels


def color_histogram(image: Image.Image, stripes: int = STRIPES, bins: tuple[int, int, int] = BINS) -> np.ndarray:
    """(stripes * prod(bins),) float32 unit-norm stripe HSV histogram of an RGB PIL image."""
    hsv = np.asarray(image.convert("RGB").resize(SIZE, Image.BILINEAR).convert("HSV"), dtype=np.int64)
    levels = [hsv[..., channel] * count // 256 for channel, count in enumerate(bins)]
    codes = (levels[0] * bins[1] + levels[1]) * bins[2] + levels[2]          # (64, 32) joint bin index
    band = np.repeat(np.arange(stripes), [len(rows) for rows in np.array_split(np.arange(SIZE[1]), stripes)])
    num_bins = bins[0] * bins[1] * bins[2]
    counts = np.bincount((band[:, None] * num_bins + codes).ravel(), minlength=stripes * num_bins)
    counts = counts.reshape(stripes, num_bins).astype(np.float64)
    fractions = counts / counts.sum(axis=1, keepdims=True)
    return (np.sqrt(fractions) / np.sqrt(stripes)).ravel().astype(np.float32)


def color_histograms(paths: Sequence[str | Path], stripes: int = STRIPES, bins: tuple[int, int, int] = BINS,
                     progress: bool = False) -> torch.Tensor:
    """(N, stripes * prod(bins)) float32 tensor: `color_histogram` of every image file, in order.
    DrfmError naming the file for an unreadable image (`load_image`)."""
    rows = [color_histogram(load_image(path), stripes, bins)
            for path in tqdm(paths, desc="colour histograms", disable=not progress, leave=False)]
    return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, stripes * int(np.prod(bins)))
