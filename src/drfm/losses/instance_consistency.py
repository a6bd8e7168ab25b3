"""L_ic: identity consistency loss between the predicted SHR feature and the LR feature (Eq. 18)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def instance_consistency_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Negative cosine similarity with a stop-gradient on the target (SimSiam style).

        L_ic = -(1/B) sum_i  p_i / ||p_i||_2 . stopgrad(t_i / ||t_i||_2)

    Args:
        predicted: (B, D) Pred(f_sh), gradients flow into it (and so into Pred and E_h).
        target: (B, D) f_l of the same LR images; detached here, so E_l never gets a gradient.

    Returns:
        Scalar loss in [-1, 1] (0 for an empty batch, still attached to the graph).
    """
    if predicted.shape[0] == 0:
        return predicted.sum() * 0.0
    cosine = (F.normalize(predicted, dim=1) * F.normalize(target.detach(), dim=1)).sum(dim=1)
    return -cosine.mean()
