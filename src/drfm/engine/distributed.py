"""torch.distributed support: one process per GPU (or CPU process with gloo), launched by torchrun.

`drfm train` under `torchrun --nproc_per_node N` (or several nodes) runs data-parallel: each
process extracts a shard of the training images and the shards are gathered, so every process
clusters the same features and holds the same pseudo-labels and memories; each process trains on
its own P x K batch through the model wrapped in DistributedDataParallel (gradients averaged in
buckets, overlapping backward), and the memories are updated with the features of every process's
batch. Only rank 0 writes checkpoints and logs.
A single process needs none of this: every function here is then a no-op.
"""

from __future__ import annotations

import inspect
import os

import torch
import torch.distributed as dist
from torch import nn


def init_from_environment() -> torch.device | None:
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns this process's device.

    NCCL with the GPU LOCAL_RANK when CUDA exists, gloo on CPU. Returns None when not launched
    by torchrun (single process).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True for the process that writes files (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process."""
    if active():
        dist.barrier()


def all_true(flag: bool) -> bool:
    """True when `flag` is True on every process (each process must call it)."""
    if not active():
        return flag
    value = torch.tensor([int(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def shard(num_items: int) -> range:
    """The item indices this process handles: rank, rank + world, rank + 2 * world, ..."""
    return range(rank(), num_items, world_size())


def gather_shards(local: torch.Tensor, num_items: int, device: torch.device) -> torch.Tensor:
    """Reassemble (num_items, ...) from every process's `shard(num_items)` rows (same order as items)."""
    if not active():
        return local
    per_rank = -(-num_items // world_size())
    padded = torch.zeros((per_rank, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: len(local)] = local.to(device)
    gathered = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(gathered, padded)
    # Row j of rank r is item r + j * world: interleave.
    stacked = torch.stack(gathered, dim=1).reshape(per_rank * world_size(), *local.shape[1:])
    return stacked[:num_items].to(local.device)


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate equally sized (B, ...) tensors of every process along dim 0 (rank order)."""
    if not active():
        return local
    gathered = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(gathered, local.contiguous())
    return torch.cat(gathered)


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` wrapped in DistributedDataParallel inside a process group, `model` itself otherwise.

    Buffers (BatchNorm statistics) are not broadcast at every forward: each process keeps its own
    during an epoch and `broadcast_buffers` copies rank 0's after it.
    """
    if not active():
        return model
    wrapper = nn.parallel.DistributedDataParallel
    # newer torch names the option forward_sync_buffers (broadcast_buffers, deprecated there)
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(wrapper).parameters
                      else {"broadcast_buffers": False})
    return wrapper(model, device_ids=[device] if device.type == "cuda" else None, **no_buffer_sync)


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every process."""
    if not active():
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
