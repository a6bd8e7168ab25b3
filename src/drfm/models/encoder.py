"""The encoder E_h / E_l: backbone -> global pooling -> (optional linear projection) -> BN neck."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drfm.errors import DrfmError
from drfm.models.backbones import Pretrained, build_backbone


class GeM(nn.Module):
    """Generalised-mean pooling: (B, C, h, w) -> (B, C), mean(clamp(x, eps)^p)^(1/p) over h*w,
    with one learnable exponent p (initial value `p`; p=1 is average, p->inf max pooling)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C)."""
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class Encoder(nn.Module):
    """Images (B, 3, H, W), ImageNet-normalised -> features (B, out_dim), NOT L2-normalised.

    Pipeline: backbone (see :func:`drfm.models.backbones.build_backbone`) -> global pooling
    (``"avg"``, or ``"gem"`` with learnable p=3) -> optional ``Linear(C, feature_dim)`` projection
    (no bias; useful to keep a lightweight backbone's dimension small or to match a given size) ->
    BatchNorm1d neck whose bias is frozen at 0 (BNNeck). The output is the neck's output; callers
    L2-normalise it before any similarity (SPEC: features are L2-normalised for every similarity),
    so that the normalisation stays visible where the similarity is computed.
    ``out_dim`` is ``feature_dim`` when given, else the backbone's channel count C
    (2048 for resnet50, 512 for resnet18, 1280 for efficientnet_lite0).
    """

    def __init__(self, backbone: str = "resnet50", pretrained: Pretrained = True,
                 last_stride: int = 1, pooling: str = "avg",
                 feature_dim: int | None = None) -> None:
        super().__init__()
        self.backbone, channels = build_backbone(backbone, pretrained=pretrained,
                                                 last_stride=last_stride)
        if pooling == "avg":
            self.pool: nn.Module = nn.AdaptiveAvgPool2d(1)
        elif pooling == "gem":
            self.pool = GeM()
        else:
            raise DrfmError(f"unknown pooling '{pooling}' (known: avg, gem)")
        if feature_dim is not None and feature_dim <= 0:
            raise DrfmError(f"feature_dim must be a positive integer, got {feature_dim}")
        self.projection = (nn.Linear(channels, feature_dim, bias=False)
                           if feature_dim is not None else None)
        self.out_dim = feature_dim if feature_dim is not None else channels
        self.neck = nn.BatchNorm1d(self.out_dim)
        nn.init.ones_(self.neck.weight)
        nn.init.zeros_(self.neck.bias)
        self.neck.bias.requires_grad_(False)

    def forward(self, images: torch.Tensor, stripes: int = 0) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> (B, out_dim), un-normalised.

        With `stripes` > 0, also the backbone map average-pooled over that many horizontal stripes
        (top to bottom; ``torch.tensor_split`` of the map's rows), each stripe L2-normalised and
        the concatenation L2-normalised again: returns (features, (B, stripes * C) unit stripe
        features) from the same forward pass.
        """
        feature_map = self.backbone(images)
        pooled = self.pool(feature_map).flatten(1)
        if self.projection is not None:
            pooled = self.projection(pooled)
        features = self.neck(pooled)
        if stripes <= 0:
            return features
        parts = [F.normalize(rows.mean(dim=(2, 3)), dim=1) for rows in torch.tensor_split(feature_map, stripes, dim=2)]
        return features, F.normalize(torch.cat(parts, dim=1), dim=1)

