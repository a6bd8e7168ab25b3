"""Image loading that fails with a one-line message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from drfm.errors import DrfmError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    """True when `path` has an image file suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path) -> Image.Image:
    """Decode `path` fully into an RGB PIL image; DrfmError if it is missing, unreadable or truncated."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError:
        raise DrfmError(f"{path}: image file does not exist") from None
    except UnidentifiedImageError:
        raise DrfmError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DrfmError(f"{path}: unreadable or truncated image ({exc})") from None
