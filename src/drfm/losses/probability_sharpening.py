"""L_ps: probability sharpening loss for ambiguous LR images (Eq. 19)."""

from __future__ import annotations

import torch
from torch import Tensor


def probability_sharpening_loss(
    fused: Tensor, hr_fusion_centroids: Tensor, tau_s: float = 0.02, tau_c: float = 0.04
) -> Tensor:
    """Cross-entropy between a sharpened, stop-gradient target and the prediction over clusters.

        z = f_lsh . C_hsl^T                                   (B, K)
        L_ps = -(1/B) sum_i sum_k stopgrad(softmax(z_i / tau_s))_k . log softmax(z_i / tau_c)_k

    With tau_s < tau_c the target is sharper than the prediction, which pushes the probabilities of
    the (reliable) negative clusters down. The gradient w.r.t. z_i is (q_i - p_i) / tau_c / B,
    q = softmax(z / tau_c), p = the constant target.

    Args:
        fused: (B, D) L2-normalised fusion features f_lsh of ambiguous LR images.
        hr_fusion_centroids: (K, D) fusion-space HR resolution centroids C_hsl (constants, detached).
        tau_s: temperature of the target (sharpening), > 0.
        tau_c: temperature of the prediction, > 0.

    Returns:
        Scalar loss (0 for an empty batch or no cluster, still attached to the graph).
    """
    if fused.shape[0] == 0 or hr_fusion_centroids.shape[0] == 0:
        return fused.sum() * 0.0
    z = fused @ hr_fusion_centroids.detach().t()
    target = torch.softmax(z.detach() / tau_s, dim=1)
    return -(target * torch.log_softmax(z / tau_c, dim=1)).sum(dim=1).mean()
