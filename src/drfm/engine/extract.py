"""Feature extraction over dual-resolution views (test transform, no gradients, batched)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from drfm.data.loaders import ViewDataset
from drfm.data.views import DualViews
from drfm.errors import DrfmError
from drfm.models.dual_model import DualResolutionModel


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> the first CUDA device when one exists, else CPU; 'cpu', 'cuda', 'cuda:N', 'mps', ...
    as the torch device, checked before use.

    DrfmError naming the device when the string is not a device, when CUDA (or the device's
    backend) is not available, or when the CUDA device index does not exist.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DrfmError(f"device '{name}': not a device (expected auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DrfmError(f"device '{name}': CUDA is not available (no GPU, or torch {torch.__version__} "
                            "was built without CUDA); use the cpu device")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DrfmError(f"device '{name}': no such GPU ({count} CUDA device(s): cuda:0 to cuda:{count - 1})")
        return device
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise DrfmError(f"device '{name}': {device.type} is not available here; use the cpu device")
    return device


@torch.no_grad()
def extract_dual_features(model: DualResolutionModel, views: DualViews, transform, batch_size: int = 128,
                          device: torch.device | str = "cpu", num_workers: int = 0,
                          progress: bool = True, desc: str = "extract",
                          indices: list[int] | range | None = None,
                          stripes: int = 0) -> tuple[torch.Tensor, ...]:
    """E_h(hr_view) and E_l(lr_view) for every image (or only `indices`, in their order): two (N, D)
    L2-normalised float32 CPU tensors.

    With `stripes` > 0, also the stripe features of the same two views (Encoder.forward), two more
    (N, stripes * C) tensors: (hr, lr, hr_stripes, lr_stripes). A single-encoder model reads each
    image once and returns the same tensors for both views.
    """
    was_training = model.training
    model.eval()
    single = model.e_l is None
    dataset = ViewDataset(views, transform, with_lr=not single)
    if indices is not None:
        dataset = Subset(dataset, list(indices))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda")
    columns: list[list[torch.Tensor]] = [[], [], [], []]  # hr, lr, hr stripes, lr stripes
    for hr, lr, _ in tqdm(loader, desc=desc, disable=not progress, leave=False):
        if stripes > 0:
            hr_out = model.encode_with_stripes(hr.to(device), stripes)
            lr_out = hr_out if single else model.encode_with_stripes(lr.to(device), stripes, low_resolution=True)
        else:
            hr_out = (model.encode_hr(hr.to(device)),)
            lr_out = hr_out if single else (model.encode_lr(lr.to(device)),)
        for column, value in zip(columns, (hr_out[0], lr_out[0], *hr_out[1:], *lr_out[1:])):
            column.append(value.float().cpu())
    model.train(was_training)
    dim = model.out_dim
    outputs = [torch.cat(column) if column else torch.empty(0, dim) for column in columns[:4 if stripes > 0 else 2]]
    return tuple(outputs)


@torch.no_grad()
def fuse_features(model: DualResolutionModel, hr: torch.Tensor, lr: torch.Tensor, batch_size: int = 4096,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """model.fuse over (N, D) feature pairs in chunks; (N, D) float32 CPU tensor."""
    was_training = model.training
    model.eval()
    parts = [model.fuse(hr[i:i + batch_size].to(device), lr[i:i + batch_size].to(device)).float().cpu()
             for i in range(0, len(hr), batch_size)]
    model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, model.out_dim)
