"""`drfm train` survives bad starts, offline resumes, kills at any moment and non-finite losses.

Every case runs through the real CLI entry point (in process via drfm.cli.main, or as a
subprocess where a process must die) on a tiny generated world with random weights.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from drfm.cli import main
from drfm.data.demo_world import generate_demo_world
from drfm.engine.checkpoint import load_checkpoint, read_log

FAST = ["train.device=cpu", "model.pretrained=false", "input.height=64", "input.width=32", "train.epochs=2",
        "train.iters_per_epoch=2", "labels.k1=8", "labels.eps=0.9", "loss.ps_start_epoch=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability")
    generate_demo_world(root / "world", num_people=16, num_cameras=3, images_per_camera=2, seed=7)
    return root


def train_args(world: Path, out: Path, *overrides: str, root: Path | None = None) -> list[str]:
    return ["train", "--config", "drfm-demo", "--dataset", "mlr", "--root", str(root or world / "world"),
            "--out", str(out), "--quiet", *FAST, f"data.cache_dir={world / 'cache'}", *overrides]


def edit_run_config(run: Path, section: str, key: str, value) -> None:
    """Change one key of RUN/config.yaml (what a run folder made by other settings would hold)."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drfm: error: "), err
    return err[0]


@pytest.mark.parametrize("case", ["wrong root", "no dataset", "k1 too large", "bad override", "eval without test"])
def test_a_failed_start_writes_nothing_and_the_corrected_command_runs(world: Path, tmp_path: Path, capsys, case):
    out = tmp_path / "run"
    args = {
        "wrong root": train_args(world, out, root=tmp_path / "missing"),
        "no dataset": [a for a in train_args(world, out) if a not in ("--dataset", "mlr")],
        "k1 too large": train_args(world, out, "labels.k1=500"),
        "bad override": train_args(world, out, "train.epochs=abc"),
        "eval without test": ["train", "--config", "drfm-demo", "--dataset", "folder", "--root",
                              str(world / "world" / "images" / "train"), "--out", str(out), "--eval", "--quiet",
                              *FAST, f"data.cache_dir={world / 'cache'}"],
    }[case]
    assert main(args) == 2
    line = one_error_line(capsys)
    expected = {"wrong root": "missing", "no dataset": "--dataset", "k1 too large": "labels.k1",
                "bad override": "train.epochs", "eval without test": "empty query split"}[case]
    assert expected in line
    assert not out.exists(), "nothing is written before the start is known to work"
    assert main(train_args(world, out, "train.epochs=1")) == 0
    assert [r["epoch"] for r in read_log(out)] == [0]


def test_only_a_failed_start_is_replaced(world: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert main(train_args(world, out, "train.epochs=0")) == 0, "an untrained start (epochs=0) is a run"
    assert main(train_args(world, out)) == 2
    assert "already holds a run" in one_error_line(capsys)

    failed = tmp_path / "failed"  # a start killed during its first epoch leaves config + epoch-0 checkpoint
    assert main(train_args(world, failed, "train.epochs=0")) == 0
    edit_run_config(failed, "train", "epochs", 2)
    state = torch.load(failed / "checkpoint.pt", weights_only=False)
    state["config"]["train"]["epochs"] = 2
    torch.save(state, failed / "checkpoint.pt")
    assert main(train_args(world, failed, "train.epochs=1")) == 0
    assert "replacing the untrained start" in capsys.readouterr().err
    assert load_checkpoint(failed)["epoch"] == 1

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(train_args(world, foreign)) == 2
    assert "not a drfm run folder" in one_error_line(capsys)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_resume_needs_no_pretrained_weights(world: Path, tmp_path: Path, monkeypatch, capsys):
    weights = tmp_path / "resnet18-local.pth"
    from torchvision.models import resnet18

    torch.save(resnet18().state_dict(), weights)
    out = tmp_path / "run"
    assert main(train_args(world, out, "model.backbone=resnet18", f"model.pretrained={weights}",
                           "train.epochs=1")) == 0
    weights.unlink()  # the local weights file is gone, and so is the network:
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    for epochs, pretrained in ((2, str(weights)), (3, True)):  # a local file; torchvision's download
        edit_run_config(out, "model", "pretrained", pretrained)
        edit_run_config(out, "train", "epochs", epochs)
        assert main(["train", "--resume", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert load_checkpoint(out)["epoch"] == 3


def test_resume_restores_a_lost_log_line_and_removes_killed_temporaries(world: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert main(train_args(world, out, "train.epochs=1")) == 0
    (out / "log.jsonl").write_text("")  # killed after the checkpoint swap, before the log write
    stale = out / ".checkpoint.pt.abc123.tmp"
    stale.mkdir()
    (stale / "checkpoint.pt").write_bytes(b"\0" * 1000)
    edit_run_config(out, "train", "epochs", 2)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert [r["epoch"] for r in read_log(out)] == [0, 1]
    assert not stale.exists()


def test_a_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(world, tmp_path, monkeypatch,
                                                                                    capsys):
    import drfm.engine.objective as objective_module

    real = objective_module.instance_consistency_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss  # epoch 1, step 1 (2 steps per epoch)

    monkeypatch.setattr(objective_module, "instance_consistency_loss", poisoned)
    out = tmp_path / "run"
    assert main(train_args(world, out, "train.epochs=3")) == 2
    line = one_error_line(capsys)
    assert "epoch 1, step 1" in line and "L_ic nan" in line
    assert load_checkpoint(out)["epoch"] == 1 and [r["epoch"] for r in read_log(out)] == [0]


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["model"]


def _drfm(*args: str) -> list[str]:
    return [sys.executable, "-m", "drfm", *args]


@pytest.fixture(scope="module")
def straight(world: Path, tmp_path_factory) -> tuple[Path, float]:
    """An uninterrupted 3-epoch run in a subprocess, and how long it took (seconds)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    started = time.perf_counter()
    subprocess.run(_drfm(*train_args(world, run, "train.epochs=3")), check=True, env=ONE_THREAD, capture_output=True)
    return run, time.perf_counter() - started


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_killed_at_random_moments_and_resumed_gives_the_uninterrupted_weights_and_log(world: Path, tmp_path: Path,
                                                                                       straight, seed: int):
    straight_run, duration = straight
    run = tmp_path / "killed"
    rng = random.Random(seed)
    kills = 0
    for _ in range(10):
        fresh = not (run / "checkpoint.pt").is_file()  # killed before the start was saved: start again
        command = _drfm(*train_args(world, run, "train.epochs=3")) if fresh else _drfm("train", "--resume", str(run),
                                                                                      "--quiet")
        process = subprocess.Popen(command, env=ONE_THREAD, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if kills < 2:
            try:
                process.wait(timeout=rng.uniform(0.3, 1.0) * duration)
            except subprocess.TimeoutExpired:
                process.kill()  # SIGKILL: no clean-up code runs
                kills += 1
        _, err = process.communicate()
        if process.returncode == 0 and kills == 0:
            # finished before the kill (a warm twin cache makes it faster than the straight run):
            # start over with earlier kill moments
            shutil.rmtree(run)
            duration /= 2
            continue
        if process.returncode == 0:
            break
        assert process.returncode == -9, err.decode()
    assert process.returncode == 0 and kills >= 1
    expected, resumed = _final_weights(straight_run), _final_weights(run)
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    log = read_log(run)
    assert [r["epoch"] for r in log] == [0, 1, 2]
    keys = ("num_clusters", "N1c", "losses")
    assert [[r.get(k) for k in keys] for r in log] == [[r.get(k) for k in keys] for r in read_log(straight_run)]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run / "environment.json").read_text())["world_size"] == 1
