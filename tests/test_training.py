"""End to end: DRFM trains on a tiny generated world and beats its untrained start; resume is exact."""

from pathlib import Path

import numpy as np
import pytest
import torch

from drfm.config import load_config
from drfm.data.demo_world import generate_demo_world
from drfm.engine.checkpoint import summarise_epoch
from drfm.engine.inference import run_feature_arrays
from drfm.engine.runs import resume_run, start_run
from drfm.errors import DrfmError
from drfm.evaluation.features_file import FeatureSet
from drfm.evaluation.protocol import evaluate_features


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_demo_world(root / "world", num_people=48, num_cameras=3, images_per_camera=3, seed=3)
    return root


def tiny_config(world: Path, name: str = "drfm-demo", *overrides: str) -> dict:
    config = load_config(name, ["train.device=cpu", *overrides])
    config["data"].update(dataset="mlr", root=str(world / "world"), cache_dir=str(world / "cache"))
    return config


def rank1(run_dir: Path) -> float:
    arrays = run_feature_arrays(run_dir, progress=False)
    return evaluate_features(FeatureSet(**arrays), protocol="single-shot", trials=5, seed=0)["rank1"]


@pytest.mark.slow
def test_drfm_two_short_epochs_beat_the_untrained_model(world: Path, tmp_path: Path):
    overrides = ("train.epochs=2", "train.iters_per_epoch=8", "loss.ps_start_epoch=1", "labels.k1=10")
    untrained = start_run(tiny_config(world, "drfm-demo", *overrides, "train.epochs=0"),
                               tmp_path / "untrained", progress=False)
    untrained.fit()
    trained = start_run(tiny_config(world, "drfm-demo", *overrides), tmp_path / "trained", progress=False)
    log = trained.fit()
    assert len(log) == 2
    first, second = log
    assert first["num_clusters"] > 0 and "label_quality" in first
    assert 0 < first["T"] <= 0.7 + 1e-9 and first["num_labelled_lr"] <= first["N2"]
    assert set(second["losses"]) >= {"cc", "ic", "ps", "total"}, "L_ps switches on at ps_start_epoch"
    assert "ps" not in first["losses"]
    assert rank1(tmp_path / "trained") > rank1(tmp_path / "untrained")


@pytest.mark.slow
def test_interrupted_and_resumed_run_ends_with_identical_weights(world: Path, tmp_path: Path):
    overrides = ("train.epochs=2", "train.iters_per_epoch=2", "model.pretrained=false", "loss.ps_start_epoch=1",
                 "labels.k1=10", "labels.eps=0.9", "input.height=64", "input.width=32")
    straight = start_run(tiny_config(world, "drfm-demo", *overrides), tmp_path / "straight", progress=False)
    straight.fit()
    interrupted = start_run(tiny_config(world, "drfm-demo", *overrides), tmp_path / "resumed", progress=False)
    interrupted.fit(stop_after=1)
    del interrupted
    torch.manual_seed(12345)  # a new process starts from other RNG states: resume must restore them
    resumed = resume_run(tmp_path / "resumed", progress=False)
    assert resumed.start_epoch == 1
    log = resumed.fit()
    assert [r["epoch"] for r in log] == [0, 1]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert np.array_equal(straight.pseudo.labels, resumed.pseudo.labels)


def test_cc_baseline_trains_and_a_new_run_refuses_an_existing_folder(world: Path, tmp_path: Path):
    config = tiny_config(world, "cc-demo", "train.epochs=1", "train.iters_per_epoch=2", "labels.k1=10")
    log = start_run(config, tmp_path / "cc", progress=False).fit()
    assert log[0]["num_clusters"] > 0 and "sc" in log[0]["losses"]
    with pytest.raises(DrfmError, match="already holds a run"):
        start_run(config, tmp_path / "cc", progress=False)


def test_oracle_labels_are_the_ground_truth_ids_and_leave_nothing_ambiguous(world: Path, tmp_path: Path):
    overrides = ("train.epochs=1", "train.iters_per_epoch=2", "model.pretrained=false", "loss.ps_start_epoch=0",
                 "input.height=64", "input.width=32", "labels.oracle=true")
    trainer = start_run(tiny_config(world, "drfm-demo", *overrides), tmp_path / "oracle", progress=False)
    (record,) = trainer.fit()
    pids = trainer.views.pids
    _, expected = np.unique(pids, return_inverse=True)
    assert np.array_equal(trainer.pseudo.labels, expected)
    assert record["oracle"] and record["num_clusters"] == len(np.unique(pids))
    assert record["num_ambiguous"] == 0 and record["label_quality"]["f1"] == 1.0
    assert record["mixed_share"] == 1.0, "every person of the world is seen at both resolutions"
    assert "mixed 100%  label F 1.000" in summarise_epoch(record)
    assert "ps" not in record["losses"], "L_ps has no ambiguous LR image to sharpen"


@pytest.mark.parametrize("calibration", ["none", "resolution", "resolution_saturation"])
def test_color_weight_clusters_with_the_training_images_colour_histograms(world: Path, tmp_path: Path,
                                                                          calibration: str):
    from drfm.labels.color import calibrated_histograms, load_thumbnails
    from drfm.labels.strategy import assign_pseudo_labels

    overrides = ("train.epochs=1", "train.iters_per_epoch=2", "model.pretrained=false", "input.height=64",
                 "input.width=32", "labels.k1=8", f"labels.color_calibration={calibration}", "labels.color_weight=1")
    trainer = start_run(tiny_config(world, "cc-demo", *overrides), tmp_path / "color", progress=False)
    thumbnails = load_thumbnails(trainer.views.source)
    assert torch.equal(trainer.color, calibrated_histograms(thumbnails, trainer.views.origin, calibration))
    features, stripes = trainer.extract(0)
    trainer.label(features, stripes)
    expected = assign_pseudo_labels(trainer.config["labels"], features["hr"], features["lr"], trainer.views.origin,
                                    color=trainer.color, stripes=stripes, quality=False)
    without = assign_pseudo_labels({**trainer.config["labels"], "color_weight": 0.0}, features["hr"], features["lr"],
                                   trainer.views.origin, stripes=stripes, quality=False)
    assert np.array_equal(trainer.pseudo.labels, expected.labels)
    assert not np.array_equal(expected.labels, without.labels)
    (record,) = trainer.fit()
    assert record["num_clusters"] > 0 and np.isfinite(record["losses"]["total"])
    no_color = start_run(tiny_config(world, "cc-demo", *overrides[:-1]), tmp_path / "plain", progress=False)
    assert no_color.color is None
