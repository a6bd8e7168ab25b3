"""Down-sampling of an image by an integer factor: the one rule behind SLR views, MLR builds and the demo world.

An image of w x h pixels becomes max(1, round(w / factor)) x max(1, round(h / factor)) pixels
(Python's round: halves go to the even number), resampled by PIL's bicubic filter, whose support
PIL widens by the reduction factor, so the result is antialiased (1-pixel black/white stripes
become mid grey, not aliased stripes); `reducing_gap=None`: no reduce-then-resample shortcut.
"""

from __future__ import annotations

from PIL import Image

INTERPOLATION = "bicubic-antialias"
"""The rule's name in an MLR manifest (`interpolation` of every down-sampled entry)."""


def downsampled_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """(width, height) in pixels after down-sampling by `factor`: (max(1, round(width / factor)),
    max(1, round(height / factor)))."""
    return max(1, round(width / factor)), max(1, round(height / factor))


def downsample(image: Image.Image, factor: int = 4) -> Image.Image:
    """`image` (w x h pixels) down-sampled by `factor` to `downsampled_size(w, h, factor)` pixels,
    bicubic and antialiased (module docstring); same mode as `image`."""
    return image.resize(downsampled_size(image.width, image.height, factor), Image.BICUBIC, reducing_gap=None)
