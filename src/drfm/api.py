"""Use a trained model from Python: `model = drfm.load(RUN_DIR)`, `model.embed(images)`.

Test-time features (SPEC: Test-time features), one L2-normalised D-dimensional vector per image:

- a low-resolution image x_l: CRFF(E_h(SR(x_l)), E_l(x_l)), SR = the run's `preprocess.sr_backend`
  upscaling by `preprocess.factor`;
- a high-resolution image x_h: CRFF(E_h(x_h), E_l(DS(x_h))), DS = bicubic down-sampling by
  `preprocess.factor`;
- a run without a fusion module: E_h of the view E_h would see above; the single-encoder Cluster
  Contrast baseline: E_h of the image itself.

`embed` runs drfm.engine.test_time.TestTimeEncoder, the path `drfm evaluate --run` and `drfm
extract` take, so it gives the features the evaluation scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drfm.data.image_io import is_low_resolution, load_image
from drfm.engine.checkpoint import CHECKPOINT_NAME
from drfm.engine.extract import resolve_device
from drfm.engine.inference import load_run
from drfm.engine.test_time import FeatureNet, TestTimeEncoder
from drfm.errors import DrfmError
from drfm.models.dual_model import DualResolutionModel
from drfm.utils.hashing import files_sha256

RESOLUTIONS = ("auto", "low", "high")
ImageInput = str | os.PathLike | Image.Image | torch.Tensor


def _tensor_images(tensor: torch.Tensor, where: str) -> list[Image.Image]:
    """(3, H, W) or (B, 3, H, W) RGB tensor (float in [0, 1] or uint8) -> PIL images."""
    batch = tensor.detach().cpu()
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise DrfmError(f"{where}: a tensor image must be (3, H, W) or (B, 3, H, W) RGB, got {tuple(tensor.shape)}")
    if batch.dtype != torch.uint8:
        if not batch.is_floating_point():
            raise DrfmError(f"{where}: a tensor image must be uint8 or float in [0, 1], got {batch.dtype}")
        batch = (batch.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return [Image.fromarray(a) for a in batch.permute(0, 2, 3, 1).numpy()]


def as_pil_images(images: ImageInput | Sequence[ImageInput]) -> list[Image.Image]:
    """RGB PIL images of `images`: one image or a sequence of paths, PIL images and tensors.

    A tensor is RGB, (3, H, W) or a (B, 3, H, W) batch, float in [0, 1] or uint8 in [0, 255]
    (not normalised). DrfmError names the item that is not an image.
    """
    if isinstance(images, (str, os.PathLike, Image.Image, torch.Tensor)):
        images = [images]
    out: list[Image.Image] = []
    for index, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            out.append(load_image(item))
        elif isinstance(item, Image.Image):
            out.append(item.convert("RGB"))
        elif isinstance(item, torch.Tensor):
            out.extend(_tensor_images(item, f"image {index}"))
        else:
            raise DrfmError(f"image {index}: expected a path, a PIL image or a tensor, got {type(item).__name__}")
    return out


class ReIDModel:
    """A trained run ready for inference: `embed` images into fusion features.

    Build it with `ReIDModel.from_run(path)` (or `drfm.load(path)`). Attributes: `config` (the
    run's configuration), `network` (FeatureNet, eval mode, on `device`), `checkpoint` (file).
    """

    def __init__(self, config: dict, model: DualResolutionModel, checkpoint: Path,
                 device: torch.device | str = "cpu") -> None:
        self.config = config
        self.checkpoint = Path(checkpoint)
        self.device = torch.device(device)
        self.encoder = TestTimeEncoder(model, config, self.device)
        self._fingerprint: str | None = None

    @classmethod
    def from_run(cls, path: str | os.PathLike, device: str = "auto") -> "ReIDModel":
        """Load a run folder (its config.yaml and checkpoint.pt) or a checkpoint file alone (its
        embedded configuration). `device`: "auto" (CUDA when available), "cpu", "cuda:N", ...

        DrfmError (one line) for an unavailable device, a missing path, a checkpoint of another
        format version or a configuration that does not fit the weights.
        """
        path = Path(path)
        torch_device = resolve_device(device)
        config, model, _ = load_run(path, device="cpu")
        checkpoint = path / CHECKPOINT_NAME if path.is_dir() else path
        return cls(config, model, checkpoint, torch_device)

    @property
    def network(self) -> FeatureNet:
        """The test-time network (eval mode, on `device`) that `embed` runs."""
        return self.encoder.network

    @property
    def feature_dim(self) -> int:
        """D, the length of a feature vector."""
        return self.network.model.out_dim

    @property
    def lr_height_threshold(self) -> int:
        """Pixel height below which `resolution="auto"` treats an image as low-resolution."""
        threshold = self.config["data"].get("lr_height_threshold")
        if threshold is None:
            raise DrfmError(f"{self.checkpoint}: its configuration sets no data.lr_height_threshold; "
                            "choose resolution 'low' or 'high'")
        return int(threshold)

    @property
    def fingerprint(self) -> str:
        """Hex sha256 of the checkpoint file and of every setting that changes the features
        (method, input, preprocess, LR threshold): equal fingerprints give equal features."""
        if self._fingerprint is None:
            settings = {key: self.config[key] for key in ("method", "input", "preprocess")}
            settings["lr_height_threshold"] = self.config["data"].get("lr_height_threshold")
            h = hashlib.sha256(files_sha256([self.checkpoint]).encode())
            h.update(json.dumps(settings, sort_keys=True).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def low_resolution(self, images: Sequence[Image.Image], resolution: str = "auto") -> np.ndarray:
        """(N,) bool: which images `embed` treats as low-resolution. "auto": pixel height below
        `lr_height_threshold`; "low" / "high": all of them / none."""
        if resolution not in RESOLUTIONS:
            raise DrfmError(f"resolution '{resolution}' is not one of {', '.join(RESOLUTIONS)}")
        if resolution != "auto":
            return np.full(len(images), resolution == "low")
        threshold = self.lr_height_threshold
        return np.array([is_low_resolution(image.height, threshold) for image in images], dtype=bool)

    def views(self, images: Sequence[Image.Image], low: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The preprocessed (hr_view, lr_view) batches of RGB `images` (TestTimeEncoder.views)."""
        return self.encoder.views(images, low)

    @torch.no_grad()
    def embed(self, images: ImageInput | Sequence[ImageInput], resolution: str = "auto",
              batch_size: int | None = None) -> torch.Tensor:
        """(N, D) float32 CPU tensor of L2-normalised fusion features, one row per image, in order.

        `images`: a path, PIL image or tensor, or a sequence of them (see `as_pil_images`).
        `resolution`: "low", "high", or "auto" (by pixel height against `lr_height_threshold`).
        Images are decoded and run `batch_size` at a time (default: the run's extract batch size).
        """
        if resolution not in RESOLUTIONS:
            raise DrfmError(f"resolution '{resolution}' is not one of {', '.join(RESOLUTIONS)}")
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            images = list(images)
        elif isinstance(images, (str, os.PathLike, Image.Image, torch.Tensor)):
            images = [images]
        batch_size = batch_size or int(self.config["train"]["extract_batch_size"])
        parts = []
        for start in range(0, len(images), batch_size):
            pil = as_pil_images(images[start : start + batch_size])
            parts.append(self.encoder.embed(pil, self.low_resolution(pil, resolution)))
        return torch.cat(parts) if parts else torch.empty(0, self.feature_dim)


def load(path: str | os.PathLike, device: str = "auto") -> ReIDModel:
    """`ReIDModel.from_run(path, device)`: a trained run folder or checkpoint file, ready to embed."""
    return ReIDModel.from_run(path, device)
