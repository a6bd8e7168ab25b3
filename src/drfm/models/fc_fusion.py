"""The fusion of ablation A5: one fully connected layer over the concatenated pair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drfm.models.crff import init_pair_sum


class FCFusion(nn.Module):
    """fused = L2-normalise(Linear(2D, D)(concat(a, b))), a from E_h and b from E_l, both (B, D)
    and L2-normalised first, as in :class:`drfm.models.crff.CRFF` (same call signature and the
    same `init`: "sum" starts as normalise(a + b), "random" as PyTorch's Linear)."""

    def __init__(self, dim: int, init: str = "sum") -> None:
        super().__init__()
        self.fc = nn.Linear(2 * dim, dim)
        if init == "sum":
            init_pair_sum(self.fc)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, D) -> fused (B, D), unit L2 norm per row."""
        pair = torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], dim=1)
        return F.normalize(self.fc(pair), dim=1)
