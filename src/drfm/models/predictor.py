"""Pred: the predictor of the instance-consistency loss L_ic (SPEC: Linear 2048 -> 2048)."""

from __future__ import annotations

import torch
from torch import nn


class Predictor(nn.Module):
    """One ``Linear(dim, dim)`` (with bias): (B, dim) -> (B, dim). L_ic compares
    Pred(f_sh) with stopgrad(f_l) by cosine, so the output is not normalised here."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, dim) -> (B, dim)."""
        return self.linear(features)
