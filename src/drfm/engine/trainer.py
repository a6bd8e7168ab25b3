"""The training loop, one epoch as the paper describes it: extract -> label -> objective reset ->
iterate (`train_step`) -> after-epoch (checkpoint, log). The labelling strategy
(`drfm.labels.strategy`) and the objective (`drfm.engine.objective`: DRFM's or Cluster Contrast's)
are each chosen once from the configuration. Starting and resuming a run live in
`drfm.engine.runs`, run-folder rules in `drfm.engine.checkpoint`, data parallelism in
`drfm.engine.distributed`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from drfm.config import validate_config
from drfm.data.loaders import epoch_loader
from drfm.data.transforms import test_transform
from drfm.engine import distributed
from drfm.engine.checkpoint import rng_state, save_checkpoint, summarise_epoch, write_log
from drfm.engine.extract import extract_dual_features, fuse_features, resolve_device
from drfm.engine.objective import build_objective, check_finite
from drfm.errors import DrfmError
from drfm.labels.strategy import assign_pseudo_labels
from drfm.models.dual_model import DualResolutionModel
from drfm.utils.seeding import seed_everything


class Trainer:
    """Train one configuration on one dataset into RUN_DIR; `fit()` runs (or resumes) to the end."""

    def __init__(self, config: dict, run_dir: str | Path, progress: bool = True, pretrained: bool = True) -> None:
        """Model (wrapped in DistributedDataParallel under torchrun), objective, optimiser and
        schedule of `config`; `pretrained=False` skips the backbone's pretrained weights (resume:
        the checkpoint holds them). Writes nothing."""
        validate_config(config)
        self.config, self.run_dir = config, Path(run_dir)
        self.device = distributed.init_from_environment() or resolve_device(config["train"]["device"])
        self.progress = progress and distributed.is_main()
        seed_everything(config["seed"])
        self.model = DualResolutionModel.from_config(
            config if pretrained else {**config, "model": {**config["model"], "pretrained": False}}).to(self.device)
        self.network = distributed.data_parallel(self.model, self.device)
        self.objective = build_objective(config, self.device)
        train = config["train"]
        self.optimizer = torch.optim.Adam(self.model.parameter_groups(train["lr"], train["fusion_lr_scale"]),
                                          lr=train["lr"], weight_decay=train["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, train["lr_steps"], train["lr_gamma"])
        self.num_labelled = train["batch_size"] // train["instances_per_id"] * train["instances_per_id"]
        self.start_epoch, self.log, self.splits, self.views, self.pseudo, self.color = 0, [], None, None, None, None

    def fit(self, stop_after: int | None = None) -> list[dict]:
        """Run the remaining epochs (or stop once `stop_after` are done, as an interruption would);
        after each, save the checkpoint (which holds the log), then the log. Returns the log."""
        if self.views is None:
            raise DrfmError("Trainer.fit: no training data; build it with drfm.engine.runs.start_run or resume_run")
        if distributed.is_main():
            write_log(self.run_dir, self.log)
        epochs = self.config["train"]["epochs"]
        for epoch in range(self.start_epoch, epochs if stop_after is None else min(stop_after, epochs)):
            self.log.append(self.run_epoch(epoch))
            if distributed.is_main():
                save_checkpoint(self.run_dir, self.checkpoint_state(epoch + 1, self.log))
                write_log(self.run_dir, self.log)
                if self.progress:
                    print(summarise_epoch(self.log[-1]), flush=True)
            distributed.barrier()
        return self.log

    def run_epoch(self, epoch: int) -> dict:
        """Extract, label, reset the objective, iterate; returns the epoch's log record."""
        seconds, clock = {}, time.perf_counter()
        features, stripes = self.extract(epoch)
        seconds["extract"], clock = time.perf_counter() - clock, time.perf_counter()
        self.label(features, stripes, quality=self.config["train"]["log_label_quality"])
        seconds["labels"], clock = time.perf_counter() - clock, time.perf_counter()
        record = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], **self.pseudo.stats}
        if self.pseudo.num_clusters == 0:
            self.scheduler.step()
            return {**record, "skipped": "no cluster formed: nothing to train on this epoch", "seconds": seconds}
        self.reset_objective(features)
        seconds["memories"], clock = time.perf_counter() - clock, time.perf_counter()
        loss = self.config["loss"]
        use_ps = bool(loss["probability_sharpening"] and epoch >= loss["ps_start_epoch"] and self.pseudo.ambiguous.size)
        sums: dict[str, float] = {}
        self.model.train()
        loader = self.loader(epoch, use_ps)
        for step, batch in enumerate(tqdm(loader, desc=f"epoch {epoch} train", disable=not self.progress, leave=False)):
            for name, value in self.train_step(*batch, use_ps=use_ps, epoch=epoch, step=step).items():
                sums[name] = sums.get(name, 0.0) + value
        seconds["train"] = time.perf_counter() - clock
        distributed.broadcast_buffers(self.model)  # BatchNorm statistics of rank 0 everywhere
        self.scheduler.step()
        return {**record, "losses": {name: value / len(loader) for name, value in sums.items()}, "used_ps": use_ps,
                "seconds": {name: round(value, 3) for name, value in seconds.items()}}

    def extract(self, epoch: int) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...] | None]:
        """This epoch's test-transform features of every training image ({"hr", "lr"}: (N, D)),
        and with labels.stripes their stripe features (this process extracts its shard)."""
        inp, train = self.config["input"], self.config["train"]
        extracted = extract_dual_features(self.model, self.views, test_transform(inp["height"], inp["width"]),
                                          batch_size=train["extract_batch_size"], device=self.device,
                                          num_workers=train["num_workers"], progress=self.progress,
                                          desc=f"epoch {epoch} extract", indices=distributed.shard(len(self.views)),
                                          stripes=self.config["labels"]["stripes"])
        hr, lr, *stripes = (distributed.gather_shards(part, len(self.views), self.device) for part in extracted)
        return {"hr": hr, "lr": lr}, tuple(stripes) or None

    def label(self, features: dict[str, torch.Tensor], stripes: tuple[torch.Tensor, ...] | None,
              quality: bool = True) -> None:
        """This epoch's pseudo-labels (`self.pseudo`) from `extract`'s output, as labels.* says;
        `quality` logs them against the training identities where known."""
        self.pseudo = assign_pseudo_labels(self.config["labels"], features["hr"], features["lr"], self.views.origin,
                                           self.views.pids, quality=quality, stripes=stripes, color=self.color)

    def reset_objective(self, features: dict[str, torch.Tensor]) -> None:
        """Fill the objective's memories with this epoch's features (and fused ones) and labels."""
        if self.model.fusion is not None:
            features["fusion"] = fuse_features(self.model, features["hr"], features["lr"], device=self.device)
        self.objective.reset(self.pseudo, features, torch.as_tensor(self.views.origin))

    def loader(self, epoch: int, use_ps: bool) -> DataLoader:
        """This epoch's P x K batches (then, with L_ps, ambiguous LR images), seeded by (seed, epoch, rank)."""
        return epoch_loader(self.views, self.pseudo.labels, self.pseudo.ambiguous if use_ps else None, self.config,
                            (self.config["seed"], epoch, distributed.rank()), with_lr=self.model.uses_twins,
                            pin_memory=self.device.type == "cuda")

    def train_step(self, hr_images: torch.Tensor, lr_images: torch.Tensor, index: torch.Tensor, *,
                   use_ps: bool, epoch: int, step: int) -> dict[str, float]:
        """One optimiser step on a batch ((B, 3, H, W) twice, (B,) training indices): forward, losses,
        backward (gradients averaged across processes), step, memory update; returns the losses."""
        hr_images, lr_images, index = (t.to(self.device, non_blocking=True) for t in (hr_images, lr_images, index))
        features = self.network(hr_images, lr_images, self.objective.prediction_rows(index, self.num_labelled))
        losses = self.objective.losses(features, index, self.num_labelled, use_ps)
        check_finite(losses, self.run_dir, epoch, step)
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.objective.update(features, index, self.num_labelled)
        return {**{name: float(value.detach()) for name, value in losses.items()}, "total": float(total.detach())}

    def checkpoint_state(self, epochs_done: int, log: list[dict]) -> dict:
        """What resume reads (drfm.engine.runs): weights, optimiser, schedule, RNG states and the
        log of the epochs done (pseudo-labels and memories are rebuilt every epoch)."""
        return {"epoch": epochs_done, "config": self.config, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "rng": rng_state(), "log": log}
