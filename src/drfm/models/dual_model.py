"""The networks of a run: E_h, E_l, Pred and the fusion module (CRFF, one FC layer, or none).

The Cluster Contrast baseline has a single encoder: E_l is E_h.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from drfm.models.crff import CRFF
from drfm.models.encoder import Encoder
from drfm.models.fc_fusion import FCFusion
from drfm.models.predictor import Predictor


@functools.lru_cache(maxsize=None)
def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype the encoders may run in on `device`: bf16 on a CUDA GPU that supports it, None
    (float32) elsewhere: CPU bf16 is ~50x slower on the CPUs measured (PERF-NOTES). Asked once
    per device (the encoders ask on every batch)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class DualResolutionModel(nn.Module):
    """E_h and E_l (same architecture, separate weights), Pred, and the fusion module.

    `encode_hr(x)` / `encode_lr(x)` map image batches (B,3,H,W) to L2-normalised (B,D) features;
    `fuse(a, b)` maps an (E_h, E_l) feature pair to the L2-normalised fusion feature; `forward`
    (what training and DistributedDataParallel call) gives every space's features of a batch.
    With `mixed_precision` the encoders run under autocast where `autocast_dtype` allows it; their
    features come back as float32, so memories, losses and fusion stay in float32.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool | str = True, last_stride: int = 1,
                 pooling: str = "avg", feature_dim: int | None = None, fusion: str = "crff",
                 single_encoder: bool = False, predictor: bool = True, fusion_init: str = "sum",
                 mixed_precision: bool = False) -> None:
        super().__init__()
        self.mixed_precision = mixed_precision
        self.e_h = Encoder(backbone, pretrained=pretrained, last_stride=last_stride, pooling=pooling,
                           feature_dim=feature_dim)
        self.e_l = None if single_encoder else Encoder(
            backbone, pretrained=pretrained, last_stride=last_stride, pooling=pooling, feature_dim=feature_dim)
        dim = self.e_h.out_dim
        self.out_dim = dim
        self.predictor = Predictor(dim) if predictor else None
        fusions = {"crff": CRFF, "fc": FCFusion, "none": None}
        if fusion not in fusions:
            raise ValueError(f"unknown fusion '{fusion}' (known: {', '.join(fusions)})")
        self.fusion = fusions[fusion](dim, init=fusion_init) if fusions[fusion] is not None else None
        # channels_last: ~1.6-3x faster convolutions on CPU (PERF-NOTES), neutral or better on GPU.
        self.to(memory_format=torch.channels_last)

    @classmethod
    def from_config(cls, config: dict) -> "DualResolutionModel":
        """Build the networks that `config` (see drfm/configs/base.yaml) describes."""
        model_cfg, loss_cfg = config["model"], config["loss"]
        return cls(
            backbone=model_cfg["backbone"], pretrained=model_cfg["pretrained"],
            last_stride=model_cfg["last_stride"], pooling=model_cfg["pooling"],
            feature_dim=model_cfg["feature_dim"], fusion=model_cfg["fusion"], fusion_init=model_cfg["fusion_init"],
            single_encoder=config["method"] == "cluster_contrast",
            predictor=config["method"] != "cluster_contrast" and bool(loss_cfg["instance_consistency"]),
            mixed_precision=config["train"]["mixed_precision"],
        )

    @property
    def uses_twins(self) -> bool:
        """Whether images are read through resolution twins (E_h reads SR(x) of an LR image, E_l
        DS(x) of an HR one): True with two encoders; the single encoder of Cluster Contrast reads
        every image as it is. The one rule training, evaluation, the API and export follow."""
        return self.e_l is not None

    def parameter_groups(self, lr: float, fusion_lr_scale: float = 1.0) -> list[dict]:
        """The trainable parameters as optimiser groups: one group at `lr`, or, when
        `fusion_lr_scale` != 1 and there is a fusion module, the fusion's parameters in a second
        group at lr * fusion_lr_scale (0 keeps the fusion as initialised)."""
        trainable = [p for p in self.parameters() if p.requires_grad]
        if self.fusion is None or fusion_lr_scale == 1.0:
            return [{"params": trainable, "lr": lr}]
        fusion_ids = {id(p) for p in self.fusion.parameters()}
        return [{"params": [p for p in trainable if id(p) not in fusion_ids], "lr": lr},
                {"params": [p for p in trainable if id(p) in fusion_ids], "lr": lr * fusion_lr_scale}]

    def forward(self, hr_images: torch.Tensor, lr_images: torch.Tensor | None = None,
                predict: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every space's features of a batch of (B, 3, H, W) images: "hr" = E_h(hr_images),
        "lr" = E_l(lr_images) (a single-encoder model does not read `lr_images`: E_h's features),
        "fusion" (with a fusion module), (B, D) each; and with a predictor "predicted" =
        Pred("hr"[predict]), (R, D) for the R rows the boolean mask `predict` (B,) selects (all
        rows when None)."""
        hr = self.encode_hr(hr_images)
        features = {"hr": hr, "lr": hr if self.e_l is None else self.encode_lr(lr_images)}
        if self.fusion is not None:
            features["fusion"] = self.fusion(hr, features["lr"])
        if self.predictor is not None:
            features["predicted"] = self.predictor(hr if predict is None else hr[predict])
        return features

    def _run(self, encoder: Encoder, images: torch.Tensor, **options) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """`encoder` on channels_last `images`, under autocast when mixed precision applies;
        float32 outputs."""
        images = images.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(images.device) if self.mixed_precision else None
        if dtype is None:
            return encoder(images, **options)
        with torch.autocast(images.device.type, dtype=dtype):
            out = encoder(images, **options)
        return tuple(part.float() for part in out) if isinstance(out, tuple) else out.float()

    def encode_hr(self, images: torch.Tensor) -> torch.Tensor:
        """E_h features, L2-normalised, (B, D)."""
        return F.normalize(self._run(self.e_h, images), dim=1)

    def encode_lr(self, images: torch.Tensor) -> torch.Tensor:
        """E_l features (E_h for a single-encoder model), L2-normalised, (B, D)."""
        return F.normalize(self._run(self.e_h if self.e_l is None else self.e_l, images), dim=1)

    def encode_with_stripes(self, images: torch.Tensor, stripes: int,
                            low_resolution: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(E_h or, with `low_resolution`, E_l features L2-normalised (B, D), stripe features
        (B, stripes * C)) in one forward pass (see Encoder.forward)."""
        encoder = self.e_l if low_resolution and self.e_l is not None else self.e_h
        features, parts = self._run(encoder, images, stripes=stripes)
        return F.normalize(features, dim=1), parts

    def fuse(self, hr_features: torch.Tensor, lr_features: torch.Tensor) -> torch.Tensor:
        """Fusion features (B, D), L2-normalised; without a fusion module, the E_h features."""
        if self.fusion is None:
            return hr_features
        return self.fusion(hr_features, lr_features)
