"""Image loading that fails with a one-line message naming the file and the problem.

Every image is returned as 8-bit RGB. Images of more than 8 bits per pixel are scaled, not
clipped (PIL's own convert("RGB") clips every value above 255 to white):
- 16-bit grayscale (PIL modes "I;16", "I;16B", "I;16L", ...): v8 = round(v16 / 257), so 0 -> 0,
  65535 -> 255 and 257 k -> k exactly;
- 32-bit integer (mode "I", e.g. a 16-bit PNG as older PIL versions open it, or a 32-bit TIFF):
  by the range its values occupy: within [0, 255] they are kept, within [0, 65535] divided by 257
  as 16-bit data, otherwise stretched linearly from [min, max] to [0, 255];
- 32-bit float (mode "F"): within [0, 1] multiplied by 255, within [0, 255] kept, otherwise
  stretched linearly from [min, max] to [0, 255]; NaN or infinite values are an error.
Results are rounded half up; the grey value goes to all three channels. Every other mode (1, L,
P, RGB, RGBA, LA, CMYK, YCbCr, ...) is PIL's convert("RGB").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from drfm.errors import DrfmError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
MAX_8BIT, MAX_16BIT = 255, 65535
SCALE_16_TO_8 = MAX_16BIT // MAX_8BIT  # 257


def is_low_resolution(height: int, threshold: int) -> bool:
    """The pixel rule for an image whose resolution nothing records: low-resolution when it is
    lower than `threshold` pixels (folder data, `drfm prepare mlr` by height, the API's "auto")."""
    return height < threshold


def image_height(path: Path) -> int:
    """Height in pixels of the image at `path`, read from its header; DrfmError if unreadable."""
    try:
        with Image.open(path) as image:
            return image.size[1]
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DrfmError(f"{path}: not a readable image ({exc})") from None


def is_image_file(path: Path) -> bool:
    """True when `path` has an image file suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _stretch(values: np.ndarray) -> np.ndarray:
    """`values` mapped linearly from [min, max] to [0, 255] (all 0 when they are all equal)."""
    low, high = float(values.min()), float(values.max())
    return (values - low) * (MAX_8BIT / (high - low)) if high > low else np.zeros_like(values)


class NonFinitePixels(ValueError):
    """A float image holds NaN or infinite values: no grey level can be given to them."""


def grey_levels_8bit(image: Image.Image) -> np.ndarray:
    """(H, W) float64 grey levels in [0, 255] of a single-channel image of mode "I;16*", "I" or
    "F", by the rules of the module docstring. Raises NonFinitePixels for NaN or inf values."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        return values / SCALE_16_TO_8
    if not np.isfinite(values).all():
        raise NonFinitePixels("NaN or infinite pixel values")
    low, high = float(values.min()), float(values.max())
    if image.mode == "F" and low >= 0 and high <= 1:
        return values * MAX_8BIT
    if low >= 0 and high <= MAX_8BIT:
        return values
    if image.mode == "I" and low >= 0 and high <= MAX_16BIT:
        return values / SCALE_16_TO_8
    return _stretch(values)


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB: high-bit-depth grey modes scaled (module docstring), others converted."""
    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return image.convert("RGB")
    grey = np.floor(grey_levels_8bit(image) + 0.5).clip(0, MAX_8BIT).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Decode `path` fully into an 8-bit RGB PIL image (16-bit, 32-bit and float grey scaled to
    8 bits, module docstring); DrfmError if it is missing, unreadable, truncated or has NaN/inf."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise DrfmError(f"{path}: image file does not exist") from None
    except UnidentifiedImageError:
        raise DrfmError(f"{path}: not a readable image") from None
    except NonFinitePixels:
        raise DrfmError(f"{path}: float image has NaN or infinite pixel values") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DrfmError(f"{path}: unreadable or truncated image ({' '.join(str(exc).split())})") from None
