"""CRFF, the cross-resolution feature fusion module (SPEC "Networks")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CRFF(nn.Module):
    """Fuse a feature pair (a from E_h, b from E_l), each (B, D), into one (B, D) feature.

    Steps, with F1, F2: Linear(D, D) and F3: Linear(2D, D), all with bias:
      a, b <- a / ||a||, b / ||b||   (the L2-normalised encoder outputs, as for every similarity)
      w = softmax over the D channels of F1(a) * F2(b)   (elementwise product; per sample)
      a' = a + a * w ;  b' = b + b * w
      fused = F3(concat(a', b')), then L2-normalised.
    Normalising the inputs here makes the result independent of whether the caller already did
    (it is idempotent) and of the scale of the un-normalised BN-neck outputs. One module serves
    both directions: f_lsh = CRFF(f_sh, f_l), f_hsl = CRFF(f_h, f_sl).

    Initialisation (the paper does not give one): F1, F2 as PyTorch's Linear; F3 as
    `init_pair_sum` with init="sum" (fused = normalise(a' + b') at the start, so the untrained
    fusion keeps what both encoders know), or PyTorch's random Linear with init="random".
    """

    def __init__(self, dim: int, init: str = "sum") -> None:
        super().__init__()
        self.f1 = nn.Linear(dim, dim)
        self.f2 = nn.Linear(dim, dim)
        self.f3 = nn.Linear(2 * dim, dim)
        if init == "sum":
            init_pair_sum(self.f3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a: (B, D) from E_h, b: (B, D) from E_l -> fused (B, D), unit L2 norm per row."""
        a = F.normalize(a, dim=1)
        b = F.normalize(b, dim=1)
        weights = torch.softmax(self.f1(a) * self.f2(b), dim=1)
        fused = self.f3(torch.cat([a + a * weights, b + b * weights], dim=1))
        return F.normalize(fused, dim=1)


def init_pair_sum(layer: nn.Linear) -> None:
    """Set a Linear(2D, D) to [I, I] with zero bias: it maps concat(x, y) to x + y."""
    dim = layer.out_features
    if layer.in_features != 2 * dim:
        raise ValueError(f"init_pair_sum needs a Linear(2D, D), got Linear({layer.in_features}, {dim})")
    with torch.no_grad():
        eye = torch.eye(dim, dtype=layer.weight.dtype)
        layer.weight.copy_(torch.cat([eye, eye], dim=1))
        layer.bias.zero_()
