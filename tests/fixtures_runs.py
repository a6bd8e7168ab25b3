"""A tiny untrained run folder (generated world, 64x32 input, random weights) for the API tests."""

from __future__ import annotations

from pathlib import Path

from drfm.config import load_config
from drfm.data.demo_world import generate_demo_world
from drfm.engine.runs import start_run


def make_world(root: Path) -> Path:
    """A generated MLR-layout world: 8 people, cameras 0-1 HR (64x128), camera 2 LR (x3, x4)."""
    world = root / "world"
    generate_demo_world(world, num_people=8, num_cameras=3, images_per_camera=2, seed=1)
    return world


def make_run(root: Path, world: Path, *overrides: str, name: str = "run") -> Path:
    """`Trainer.create` with 0 epochs: a run folder holding config.yaml and the start checkpoint."""
    config = load_config("drfm-demo", ["train.device=cpu", "train.epochs=0", "model.backbone=resnet18",
                                       "model.pretrained=false", "input.height=64", "input.width=32",
                                       "preprocess.sr_backend=bicubic", "train.extract_batch_size=4", *overrides])
    config["data"].update(dataset="mlr", root=str(world), cache_dir=str(root / "cache"))
    run_dir = root / name
    start_run(config, run_dir, progress=False)
    return run_dir
