"""DRFM's losses as pure functions of tensors (SPEC "Losses").

- `cross_resolution_contrastive_loss` (L_cc): resolution centroids of the own cluster as positives,
  the |Q| nearest resolution centroids of other clusters as negatives.
- `instance_consistency_loss` (L_ic): -cos(Pred(f_sh), stopgrad(f_l)).
- `probability_sharpening_loss` (L_ps): sharpened stop-gradient target for ambiguous LR images.
- `single_centroid_contrastive_loss` (L_sc): non-parametric softmax over cluster centroids
  (ablations, Cluster Contrast).

Memory features and centroids are constants to every loss (detached); gradients reach the features.
"""

from drfm.losses.cross_resolution_contrastive import cross_resolution_contrastive_loss
from drfm.losses.instance_consistency import instance_consistency_loss
from drfm.losses.probability_sharpening import probability_sharpening_loss
from drfm.losses.single_centroid import single_centroid_contrastive_loss

__all__ = [
    "cross_resolution_contrastive_loss",
    "instance_consistency_loss",
    "probability_sharpening_loss",
    "single_centroid_contrastive_loss",
]
