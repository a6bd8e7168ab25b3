"""DataLoaders over dual-resolution views: images in order (feature extraction) and one epoch's
P x K training batches."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from drfm.data.image_io import load_image
from drfm.data.samplers import pk_batches, with_ambiguous
from drfm.data.transforms import train_transform
from drfm.data.views import DualViews
from drfm.utils.seeding import derived_rng, derived_seed


class ViewDataset(Dataset):
    """Item i: (transform(hr_view[i]), transform(lr_view[i]), i); `with_lr=False` skips the LR view."""

    def __init__(self, views: DualViews, transform, with_lr: bool = True) -> None:
        self.views, self.transform, self.with_lr = views, transform, with_lr

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int):
        hr = self.transform(load_image(self.views.hr_view[index]))
        lr = self.transform(load_image(self.views.lr_view[index])) if self.with_lr else torch.empty(0)
        return hr, lr, index


def epoch_loader(views: DualViews, labels: np.ndarray, ambiguous: np.ndarray | None, config: dict,
                 keys: tuple[int, ...], with_lr: bool = True, pin_memory: bool = False) -> DataLoader:
    """One epoch's batches of (hr, lr, index) with the training augmentation: P x K images of the
    pseudo-identities `labels` ((N,), -1 unlabelled), then, when `ambiguous` is given, B_ps of
    those LR images (L_ps). Randomness from `keys` (seed, epoch, rank): streams 0 (batches),
    1 (augmentation) and 2 (loader workers)."""
    train, inp = config["train"], config["input"]
    rng = derived_rng(*keys)
    batches = pk_batches(labels, train["batch_size"], train["instances_per_id"], train["iters_per_epoch"], rng)
    if ambiguous is not None:
        batches = with_ambiguous(batches, ambiguous, train["ps_batch_size"], rng)
    torch.manual_seed(derived_seed(*keys, 1))
    transform = train_transform(inp["height"], inp["width"], pad=inp["pad"], flip=inp["flip"])
    return DataLoader(ViewDataset(views, transform, with_lr=with_lr), batch_sampler=batches.tolist(),
                      num_workers=train["num_workers"], pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(derived_seed(*keys, 2)))
