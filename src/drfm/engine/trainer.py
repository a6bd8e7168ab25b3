"""The training loop: every epoch extract -> cluster -> pseudo-labels -> memories -> iterate.

One loop serves DRFM, its ablations A1..A8 (configuration switches) and the Cluster Contrast
baseline (`method: cc`). The mathematics lives elsewhere (drfm.labels, drfm.memory,
drfm.losses); this module only wires it together, logs and checkpoints.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from drfm.config import load_config, save_config, validate_config
from drfm.data.records import DatasetSplits
from drfm.data.registry import read_dataset
from drfm.data.transforms import test_transform, train_transform
from drfm.data.views import HR_ORIGIN, LR_ORIGIN, DualViews, build_views
from drfm.data.samplers import pk_batches
from drfm.engine.checkpoint import (CHECKPOINT_NAME, CONFIG_NAME, ENVIRONMENT_NAME, LOG_NAME, is_temporary,
                                    load_checkpoint, read_log, remove_stale_temporaries, rng_state,
                                    save_checkpoint, set_rng_state, write_log)
from drfm.engine import distributed
from drfm.engine.extract import ViewDataset, extract_dual_features, fuse_features, resolve_device
from drfm.errors import DrfmError
from drfm.labels.strategy import PseudoLabels, assign_pseudo_labels
from drfm.losses import (cross_resolution_contrastive_loss, instance_consistency_loss,
                         probability_sharpening_loss, single_centroid_contrastive_loss)
from drfm.memory.cluster_memory import ClusterMemory
from drfm.memory.memories import InstanceMemory
from drfm.models.dual_model import DualResolutionModel
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info, seed_everything

SPACES = ("hr", "lr", "fusion")


class Trainer:
    """Train one configuration on one dataset into RUN_DIR; `fit()` runs (or resumes) to the end."""

    def __init__(self, config: dict, run_dir: str | Path, progress: bool = True, pretrained: bool = True) -> None:
        """Build model, optimiser and schedule for `config`; `pretrained=False` skips loading the
        backbone's pretrained weights (resume: the checkpoint holds them). Writes nothing."""
        validate_config(config)
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = distributed.init_from_environment() or resolve_device(config["train"]["device"])
        self.progress = progress and distributed.is_main()
        seed_everything(config["seed"])
        model_config = config if pretrained else {**config, "model": {**config["model"], "pretrained": False}}
        self.model = DualResolutionModel.from_config(model_config).to(self.device)
        train_cfg = config["train"]
        self.optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                          lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones=train_cfg["lr_steps"],
                                                              gamma=train_cfg["lr_gamma"])
        self.start_epoch = 0
        self.log: list[dict] = []
        self.splits: DatasetSplits | None = None
        self.views: DualViews | None = None
        self.memories: dict[str, InstanceMemory] = {}
        self.cluster_memory: ClusterMemory | None = None
        self.pseudo: PseudoLabels | None = None

    # ----------------------------------------------------------------------------- set-up
    @classmethod
    def create(cls, config: dict, run_dir: str | Path, progress: bool = True,
               needs_test_split: bool = False) -> "Trainer":
        """A new run in RUN_DIR. Everything that can fail is checked before a file is written:
        the configuration, RUN_DIR (it must not hold a run already: use resume), the device, the
        backbone weights, the dataset (with a query and gallery split when `needs_test_split`,
        e.g. for `--eval`) and the clustering settings against its size.

        A RUN_DIR that holds only what a failed start left (our own files and at most the
        untrained epoch-0 checkpoint of a run meant to train) is replaced, with a note saying so.
        """
        run_dir = Path(run_dir)
        validate_config(config)
        failed_start = check_new_run_folder(run_dir)
        trainer = cls(config, run_dir, progress)
        trainer.load_data(needs_test_split)
        if distributed.is_main():
            if failed_start:
                print(f"{run_dir}: replacing the untrained start of an earlier start that did not finish an "
                      "epoch", file=sys.stderr)
                remove_run_files(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / CONFIG_NAME)
            write_json_atomic(run_dir / ENVIRONMENT_NAME,
                              {**environment_info(), "world_size": distributed.world_size()})
            save_checkpoint(run_dir, trainer.checkpoint_state(0, []))  # the untrained start, resumable too
            write_log(run_dir, [])
        distributed.barrier()
        return trainer

    @classmethod
    def resume(cls, run_dir: str | Path, progress: bool = True, needs_test_split: bool = False) -> "Trainer":
        """Continue the run in RUN_DIR exactly where its last checkpoint left it.

        The model is built without pretrained weights (the checkpoint holds every weight), so a
        run resumes offline whatever its backbone. The per-epoch log is restored from the
        checkpoint, so a line lost by a kill between checkpoint and log write comes back. The
        dataset is read and checked as in `create`.
        """
        run_dir = Path(run_dir)
        if not (run_dir / CONFIG_NAME).is_file():
            raise DrfmError(f"{run_dir}: not a run folder (no {CONFIG_NAME})")
        state = load_checkpoint(run_dir)
        config = load_config(str(run_dir / CONFIG_NAME))
        if distributed.is_main():
            remove_stale_temporaries(run_dir)
        trainer = cls(config, run_dir, progress, pretrained=False)
        try:
            trainer.model.load_state_dict(state["model"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            trainer.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise DrfmError(f"{run_dir / CHECKPOINT_NAME}: does not fit {run_dir / CONFIG_NAME} "
                            f"({str(exc).splitlines()[0]})") from None
        trainer.start_epoch = state["epoch"]
        trainer.log = list(state["log"] if "log" in state else read_log(run_dir))[: trainer.start_epoch]
        trainer.load_data(needs_test_split)
        set_rng_state(state["rng"])
        return trainer

    def cache_dir(self) -> Path:
        """Where SLR/SHR twins are cached: data.cache_dir, else RUN_DIR/../cache."""
        configured = self.config["data"]["cache_dir"]
        return Path(configured) if configured else self.run_dir.parent / "cache"

    def load_data(self, needs_test_split: bool = False) -> None:
        """Read the training split and its dual-resolution views (twins computed or read from cache).

        DrfmError before any twin is computed when the dataset is missing or empty, when
        `needs_test_split` and it has no query or gallery images, or when the clustering settings
        do not fit the number of training images."""
        data, pre = self.config["data"], self.config["preprocess"]
        if not data["dataset"] or not data["root"]:
            raise DrfmError("no dataset: pass --dataset NAME --root DIR (or set data.dataset, data.root)")
        self.splits = read_dataset(data["dataset"], data["root"], seed=data["split_seed"])
        self.splits.check_not_empty(("train", "query", "gallery") if needs_test_split else ("train",))
        check_label_settings(self.config, self.splits)
        for turn in ("main", "others"):  # rank 0 fills the twin cache, then the others read it
            if distributed.is_main() == (turn == "main"):
                self.views = build_views(self.splits.train, self.splits, self.cache_dir(),
                                         sr_backend=pre["sr_backend"], sr_weights=pre["sr_weights"],
                                         factor=pre["factor"], use_twins=self.config["method"] != "cc",
                                         progress=self.progress and distributed.is_main())
            distributed.barrier()

    # ----------------------------------------------------------------------------- one epoch
    def build_memories(self, hr: torch.Tensor, lr: torch.Tensor) -> None:
        """Fill this epoch's memories with this epoch's features (SPEC: Memories)."""
        labels = torch.as_tensor(self.pseudo.labels)
        if self.config["method"] == "cc":
            self.cluster_memory = ClusterMemory.from_features(
                hr, labels, self.pseudo.num_clusters, momentum=self.config["memory"]["cc_momentum"],
                temperature=self.config["memory"]["cc_temperature"]).to(self.device)
            return
        origin = torch.as_tensor(self.views.origin)
        spaces = {"hr": hr, "lr": lr}
        if self.model.fusion is not None:
            spaces["fusion"] = fuse_features(self.model, hr, lr, device=self.device)
        self.memories = {name: InstanceMemory(feats, labels, origin, momentum=self.config["memory"]["momentum"])
                         .to(self.device) for name, feats in spaces.items()}

    def batches(self, epoch: int, use_ps: bool) -> np.ndarray:
        """(iters, B [+ B_ps]) image indices of this epoch: P x K labelled, then ambiguous LR images."""
        train_cfg = self.config["train"]
        rng = np.random.default_rng([self.config["seed"], epoch, distributed.rank()])
        labelled = pk_batches(self.pseudo.labels, train_cfg["batch_size"], train_cfg["instances_per_id"],
                              train_cfg["iters_per_epoch"], rng)
        if not use_ps:
            return labelled
        ambiguous = self.pseudo.ambiguous
        size = train_cfg["ps_batch_size"]
        extra = np.stack([rng.choice(ambiguous, size, replace=ambiguous.size < size)
                          for _ in range(train_cfg["iters_per_epoch"])])
        return np.concatenate([labelled, extra], axis=1)

    def step_losses(self, feats: dict[str, torch.Tensor], index: torch.Tensor, num_labelled: int,
                    use_ps: bool) -> dict[str, torch.Tensor]:
        """The losses of one step (SPEC: Losses) from the step's features per space (B [+ B_ps], D).

        Adds the fusion features to `feats` (when the model has a fusion module).
        """
        loss_cfg = self.config["loss"]
        hr_feat, lr_feat = feats["hr"], feats["lr"]
        labels = torch.as_tensor(self.pseudo.labels, device=self.device)[index[:num_labelled]]
        if self.config["method"] == "cc":
            return {"sc": self.cluster_memory.loss(hr_feat[:num_labelled], labels)}
        if self.model.fusion is not None:
            feats["fusion"] = self.model.fuse(hr_feat, lr_feat)
        losses: dict[str, torch.Tensor] = {}
        contrast = 0.0
        for space, memory in self.memories.items():
            f = feats[space][:num_labelled]
            if loss_cfg["kind"] == "cc":
                centroids, present = memory.resolution_centroids(self.pseudo.num_clusters)
                contrast = contrast + cross_resolution_contrastive_loss(
                    f, labels, centroids, present, num_negatives=loss_cfg["num_negatives"],
                    temperature=loss_cfg["tau_c"])
            else:
                contrast = contrast + single_centroid_contrastive_loss(
                    f, labels, memory.cluster_centroids(self.pseudo.num_clusters),
                    temperature=loss_cfg["sc_temperature"])
        losses[loss_cfg["kind"]] = contrast
        if loss_cfg["instance_consistency"]:
            is_lr = torch.as_tensor(self.views.origin, device=self.device)[index[:num_labelled]] == LR_ORIGIN
            if is_lr.any():
                predicted = self.model.predictor(hr_feat[:num_labelled][is_lr])
                losses["ic"] = instance_consistency_loss(predicted, lr_feat[:num_labelled][is_lr])
        if use_ps:
            centroids, present = self.memories["fusion"].resolution_centroids(self.pseudo.num_clusters)
            hr_centroids = centroids[:, HR_ORIGIN][present[:, HR_ORIGIN]]
            losses["ps"] = loss_cfg["ps_weight"] * probability_sharpening_loss(
                feats["fusion"][num_labelled:], hr_centroids, tau_s=loss_cfg["tau_s"], tau_c=loss_cfg["tau_c"])
        return losses

    @torch.no_grad()
    def update_memories(self, feats: dict[str, torch.Tensor], index: torch.Tensor, num_labelled: int) -> None:
        """Explicit memory update after the optimiser step, with the step's (detached) features."""
        index = distributed.gather_rows(index[:num_labelled])
        if self.config["method"] == "cc":
            labels = torch.as_tensor(self.pseudo.labels, device=self.device)[index]
            self.cluster_memory.update(distributed.gather_rows(feats["hr"][:num_labelled].detach()), labels)
            return
        for space, memory in self.memories.items():
            memory.update(index, distributed.gather_rows(feats[space][:num_labelled].detach()))

    def run_epoch(self, epoch: int) -> dict:
        """One epoch; returns its log record."""
        train_cfg, loss_cfg, inp = self.config["train"], self.config["loss"], self.config["input"]
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        mine = distributed.shard(len(self.views))
        extracted = extract_dual_features(self.model, self.views, test_transform(inp["height"], inp["width"]),
                                          batch_size=train_cfg["extract_batch_size"], device=self.device,
                                          num_workers=train_cfg["num_workers"], progress=self.progress,
                                          desc=f"epoch {epoch} extract", indices=mine,
                                          stripes=self.config["labels"]["stripes"])
        hr, lr, *stripes = (distributed.gather_shards(part, len(self.views), self.device) for part in extracted)
        seconds["extract"] = time.perf_counter() - start
        start = time.perf_counter()
        self.pseudo = assign_pseudo_labels(self.config["labels"], hr, lr, self.views.origin, self.views.pids,
                                           quality=self.config["train"]["log_label_quality"],
                                           stripes=tuple(stripes) if stripes else None)
        seconds["labels"] = time.perf_counter() - start
        record = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], **self.pseudo.stats}
        if self.pseudo.num_clusters == 0:
            self.scheduler.step()
            record.update(skipped="no cluster formed: nothing to train on this epoch", seconds=seconds)
            return record
        start = time.perf_counter()
        self.build_memories(hr, lr)
        seconds["memories"] = time.perf_counter() - start
        use_ps = (loss_cfg["probability_sharpening"] and epoch >= loss_cfg["ps_start_epoch"]
                  and self.pseudo.ambiguous.size > 0)
        batches = self.batches(epoch, use_ps)
        num_labelled = train_cfg["batch_size"] // train_cfg["instances_per_id"] * train_cfg["instances_per_id"]
        torch.manual_seed(int(np.random.default_rng([self.config["seed"], epoch, distributed.rank(), 1])
                              .integers(2**62)))
        transform = train_transform(inp["height"], inp["width"], pad=inp["pad"], flip=inp["flip"])
        loader = DataLoader(ViewDataset(self.views, transform, with_lr=self.model.e_l is not None),
                            batch_sampler=batches.tolist(), num_workers=train_cfg["num_workers"],
                            generator=torch.Generator().manual_seed(
                                (self.config["seed"] * 100003 + epoch) * 101 + distributed.rank()))
        start = time.perf_counter()
        sums: dict[str, float] = {}
        self.model.train()
        for step, (hr_img, lr_img, index) in enumerate(tqdm(loader, desc=f"epoch {epoch} train",
                                                            disable=not self.progress, leave=False)):
            index = index.to(self.device)
            hr_feat = self.model.encode_hr(hr_img.to(self.device))
            lr_feat = hr_feat if self.model.e_l is None else self.model.encode_lr(lr_img.to(self.device))
            feats = {"hr": hr_feat, "lr": lr_feat}
            losses = self.step_losses(feats, index, num_labelled, use_ps)
            total = sum(losses.values())
            self.check_finite(epoch, step, losses)
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            distributed.average_gradients(self.model)
            self.optimizer.step()
            self.update_memories(feats, index, num_labelled)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            sums["total"] = sums.get("total", 0.0) + float(total.detach())
        seconds["train"] = time.perf_counter() - start
        distributed.broadcast_buffers(self.model)  # BatchNorm statistics of rank 0 everywhere
        self.scheduler.step()
        record.update(losses={k: v / len(batches) for k, v in sums.items()}, used_ps=bool(use_ps),
                      seconds={k: round(v, 3) for k, v in seconds.items()})
        return record

    def check_finite(self, epoch: int, step: int, losses: dict[str, torch.Tensor]) -> None:
        """DrfmError naming the epoch, step and losses when a loss is NaN or infinite (on any
        process): training stops before the bad step, and the last checkpoint stays as it was."""
        values = {name: float(value.detach()) for name, value in losses.items()}
        if distributed.all_true(all(np.isfinite(v) for v in values.values())):
            return
        shown = ", ".join(f"L_{name} {value:.4g}" for name, value in values.items())
        raise DrfmError(f"{self.run_dir}: epoch {epoch}, step {step}: non-finite loss ({shown}); training "
                        f"stopped, the last good checkpoint (after {epoch} epoch(s)) is kept; "
                        f"lower train.lr or check the data, then start again")

    # ----------------------------------------------------------------------------- the run
    def checkpoint_state(self, epochs_done: int, log: list[dict]) -> dict:
        """Everything `resume` needs to continue exactly: weights, optimiser, schedule, RNG
        states and the log of the epochs done. Pseudo-labels and memories are not saved: every
        epoch rebuilds them from the model."""
        return {
            "epoch": epochs_done,
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "log": log,
        }

    def fit(self, stop_after: int | None = None) -> list[dict]:
        """Run the remaining epochs (or stop once `stop_after` epochs are done, as an interruption
        would); after each, write the checkpoint (which holds the log), then the log. Returns the
        whole log."""
        if self.views is None:
            self.load_data()
        if distributed.is_main():
            write_log(self.run_dir, self.log)
        last = self.config["train"]["epochs"] if stop_after is None else min(stop_after, self.config["train"]["epochs"])
        for epoch in range(self.start_epoch, last):
            record = self.run_epoch(epoch)
            self.log.append(record)
            if distributed.is_main():
                save_checkpoint(self.run_dir, self.checkpoint_state(epoch + 1, self.log))
                write_log(self.run_dir, self.log)
                if self.progress:
                    print(summarise_epoch(record), flush=True)
            distributed.barrier()
        return self.log


def check_new_run_folder(run_dir: Path) -> bool:
    """DrfmError unless RUN_DIR can hold a new run: it does not exist, is an empty folder, or
    holds only what a start that failed before its first epoch left (returns True then)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise DrfmError(f"{run_dir}: exists and is not a folder; choose another --out")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return False
    ours = {CONFIG_NAME, CHECKPOINT_NAME, LOG_NAME, ENVIRONMENT_NAME}
    others = sorted(p.name for p in run_dir.iterdir() if p.name not in ours and not is_temporary(p))
    if (run_dir / CHECKPOINT_NAME).is_file():
        state = load_checkpoint(run_dir)
        planned = state.get("config", {}).get("train", {}).get("epochs", 0)
        if state["epoch"] > 0 or planned == 0 or others:
            raise DrfmError(f"{run_dir}: already holds a run; continue it with --resume {run_dir}")
        return True
    if others:
        raise DrfmError(f"{run_dir}: exists and is not a drfm run folder (holds {others[0]}); choose another --out")
    return True


def remove_run_files(run_dir: Path) -> None:
    """Remove the files a failed start left in RUN_DIR (only drfm's own names)."""
    for name in (CHECKPOINT_NAME, LOG_NAME, CONFIG_NAME, ENVIRONMENT_NAME):
        (run_dir / name).unlink(missing_ok=True)
    remove_stale_temporaries(run_dir)


def clustered_rows(mode: str, num_hr: int, num_lr: int) -> tuple[int, str]:
    """How many feature rows one epoch clusters under labels.mode, and which ones (for messages)."""
    if mode == "cpg":
        return num_hr, "HR training images"
    return num_hr + num_lr, "training images (HR and LR)"


def check_label_settings(config: dict, splits: DatasetSplits) -> None:
    """DrfmError naming the labels.* key when the clustering settings cannot work on this
    dataset's training split (e.g. labels.k1 larger than the number of images clustered)."""
    labels = config["labels"]
    if labels["oracle"]:
        return
    is_lr = splits.low_resolution_mask(splits.train)
    rows, what = clustered_rows(labels["mode"], int((~is_lr).sum()), int(is_lr.sum()))
    where = f"{splits.root}: dataset '{splits.name}'"
    if rows == 0:
        raise DrfmError(f"{where} has no {what} to cluster (labels.mode={labels['mode']})")
    if labels["k1"] > rows:
        raise DrfmError(f"{where} has {rows} {what} to cluster, fewer than labels.k1={labels['k1']}; "
                        f"set labels.k1 to at most {rows} (and labels.k2 <= labels.k1)")


def summarise_epoch(record: dict) -> str:
    """One human-readable line per epoch."""
    parts = [f"epoch {record['epoch']:3d}", f"clusters {record['num_clusters']}",
             f"N1c {record['N1c']}/{record['N1']}", f"LR labelled {record['num_labelled_lr']}/{record['N2']}"]
    if "label_quality" in record:
        parts.append(f"label F {record['label_quality']['f1']:.3f}")
    for name, value in record.get("losses", {}).items():
        parts.append(f"L_{name} {value:.3f}")
    if "skipped" in record:
        parts.append(record["skipped"])
    return "  ".join(parts)
