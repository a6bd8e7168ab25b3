"""`drfm bench train` times every stage of an epoch through the real trainer and reports JSON."""

import json
from pathlib import Path

import pytest

from drfm.cli import main

TINY = ["--config", "drfm-demo", "--people", "12", "--steps", "1", "--warmup", "0", "model.pretrained=false",
        "input.height=64", "input.width=32", "labels.k1=8", "labels.k2=4", "labels.eps=0.9"]


def test_bench_train_reports_every_stage_in_images_per_second(tmp_path: Path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "train", *TINY, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    stages = {"extract", "cluster", "cpg", "memories", "load", "step", "encoders"}
    assert set(report["seconds"]) == stages and set(report["images_per_second"]) == stages
    assert report["training_images"] == 72  # 12 people, half for training, 3 cameras x 4 images
    assert report["batch_rows"] >= 16 and report["steps"] == 1 and report["num_clusters"] > 0
    assert all(value > 0 for value in report["images_per_second"].values())
    ratio = report["seconds"]["step"] / report["seconds"]["encoders"]
    assert report["step_over_encoders"] == pytest.approx(ratio, rel=0.01, abs=0.002)
    printed = capsys.readouterr().out
    assert "images/s" in printed and "step / encoders' own forward+backward" in printed


def test_bench_train_needs_dataset_and_root_together(tmp_path: Path, capsys):
    assert main(["bench", "train", *TINY, "--dataset", "mlr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["drfm: error: bench train: pass --dataset and --root together (or neither for a demo world)"]
