"""Configuration loading: _BASE_ inheritance (single and list), overrides, unknown keys."""

from pathlib import Path

import pytest

from drfm.config import config_names, load_config, parse_override
from drfm.errors import DrfmError


def test_every_named_config_loads_and_paper_defaults_hold():
    names = config_names()
    for name in ["drfm", "cc"] + [f"a{i}" for i in range(1, 9)]:
        assert name in names and f"{name}-cpu" in names
    drfm = load_config("drfm")
    assert drfm["train"]["lr"] == pytest.approx(3.5e-4)
    assert drfm["train"]["epochs"] == 40 and drfm["loss"]["num_negatives"] == 20
    assert drfm["loss"]["ps_weight"] == 1.5 and drfm["memory"]["momentum"] == 0.2
    assert (drfm["loss"]["tau_c"], drfm["loss"]["tau_s"], drfm["labels"]["tau_l"], drfm["labels"]["tau_h"]) == (
        0.04, 0.02, 0.04, 0.05)


def test_cpu_variant_changes_only_cpu_keys_and_the_ablation():
    for ablation in ["a1", "a2", "a5", "a8", "cc"]:
        full, cpu, cpu_drfm = load_config(ablation), load_config(f"{ablation}-cpu"), load_config("drfm-cpu")
        assert cpu["model"]["fusion"] == full["model"]["fusion"]
        assert cpu["loss"]["kind"] == full["loss"]["kind"]
        assert cpu["labels"]["mode"] == full["labels"]["mode"]
        assert cpu["model"]["backbone"] == cpu_drfm["model"]["backbone"] == "efficientnet_lite0"
        assert cpu["train"] == cpu_drfm["train"]
    a8 = load_config("a8-cpu")
    assert a8["loss"]["probability_sharpening"] is False and a8["loss"]["ps_start_epoch"] == 4


def test_overrides_parse_yaml_scalars_and_reject_unknown_keys():
    assert parse_override("train.lr=1e-4") == (["train", "lr"], 1e-4)
    config = load_config("drfm", ["train.epochs=3", "model.backbone=resnet18", "train.lr_steps=[1, 2]"])
    assert config["train"]["epochs"] == 3 and config["model"]["backbone"] == "resnet18"
    assert config["train"]["lr_steps"] == [1, 2]
    with pytest.raises(DrfmError, match="train.epoch"):
        load_config("drfm", ["train.epoch=3"])
    with pytest.raises(DrfmError, match="not of the form"):
        load_config("drfm", ["train.epochs"])
    with pytest.raises(DrfmError, match="unknown configuration 'nope'"):
        load_config("nope")


def test_user_file_inherits_and_unknown_key_in_file_is_named(tmp_path: Path):
    good = tmp_path / "mine.yaml"
    good.write_text("_BASE_: drfm-cpu\ntrain:\n  epochs: 2\n")
    config = load_config(str(good))
    assert config["train"]["epochs"] == 2 and config["model"]["backbone"] == "efficientnet_lite0"
    bad = tmp_path / "bad.yaml"
    bad.write_text("_BASE_: drfm\ntrian:\n  epochs: 2\n")
    with pytest.raises(DrfmError, match="bad.yaml: unknown configuration key 'trian'"):
        load_config(str(bad))
    loop = tmp_path / "loop.yaml"
    loop.write_text("_BASE_: loop.yaml\n")
    with pytest.raises(DrfmError, match="loops"):
        load_config(str(loop))
