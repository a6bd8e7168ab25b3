"""Feature memories: DRFM's instance memories and resolution centroids, and the Cluster Contrast
cluster memory.

- `drfm.memory.memories`: `InstanceMemory` (one slot per labelled feature of one space, momentum
  update, per-cluster resolution centroids; the trainer keeps three of them, M_hh, M_ll and M_fu,
  one per space, sharing labels and origins), and the helper `momentum_update_rows`.
- `drfm.memory.cluster_memory`: `ClusterMemory` (one centroid per cluster, the CC baseline).

Every update is an explicit method call under `torch.no_grad()`; nothing changes inside autograd.
"""
