"""The fusion of ablation A5: one fully connected layer over the concatenated pair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FCFusion(nn.Module):
    """fused = L2-normalise(Linear(2D, D)(concat(a, b))), a from E_h and b from E_l, both (B, D)
    and L2-normalised first, as in :class:`drfm.models.crff.CRFF` (same call signature)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * dim, dim)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, D) -> fused (B, D), unit L2 norm per row."""
        pair = torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], dim=1)
        return F.normalize(self.fc(pair), dim=1)
