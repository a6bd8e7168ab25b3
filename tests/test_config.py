"""Configuration loading: _BASE_ inheritance (single and list), overrides, unknown keys, and the
typed schema: every key's type and range, the combinations the method does not define."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest
import yaml

from drfm import config_schema as schema
from drfm.config import config_names, load_config, parse_override, save_config, typed_config, validate_config
from drfm.config_schema import DrfmConfig, from_mapping, key
from drfm.errors import DrfmError

BASE_YAML = Path(schema.__file__).parent / "configs" / "base.yaml"


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


@pytest.mark.parametrize("name", config_names())
def test_every_shipped_config_validates_and_is_typed(name: str):
    config = load_config(name)
    validate_config(config)
    assert config == dataclasses.asdict(typed_config(config))
    assert config["name"] == name
    assert type(config["train"]["lr"]) is float and type(config["train"]["epochs"]) is int


def test_schema_and_base_yaml_hold_the_same_keys_in_the_same_order():
    def paths(node: dict, prefix: str = "") -> list[str]:
        out = []
        for name, value in node.items():
            out += paths(value, f"{prefix}{name}.") if isinstance(value, dict) else [prefix + name]
        return out

    assert paths(yaml.safe_load(BASE_YAML.read_text())) == schema.leaf_paths()
    assert list(load_config("drfm")) == list(schema.entries(DrfmConfig))
    for cls in [DrfmConfig] + [entry.section for entry in schema.entries(DrfmConfig).values() if entry.section]:
        for name, entry in schema.entries(cls).items():
            assert entry.rule.meaning.strip() and "\n" not in entry.rule.meaning, name
            assert not any(f.default is not dataclasses.MISSING for f in dataclasses.fields(cls))


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


def test_cpu_presets_share_the_labelling_aids_and_the_paper_keeps_its_clustering():
    aids = ("color_weight", "color_calibration", "standardize_by", "k1_candidates")
    drfm_cpu, cc_cpu = load_config("drfm-cpu")["labels"], load_config("cc-cpu")["labels"]
    assert {key: drfm_cpu[key] for key in aids} == {key: cc_cpu[key] for key in aids}
    assert drfm_cpu["color_calibration"] == drfm_cpu["standardize_by"] == "resolution" and drfm_cpu["color_weight"] > 0
    for name in ("drfm", "cc", "a3-cpu", "drfm-demo"):
        labels = load_config(name)["labels"]
        assert (labels["color_weight"], labels["color_calibration"], labels["standardize_by"], labels["k1_candidates"]) \
            == (0.0, "none", "all", []), name


def test_overrides_parse_yaml_scalars_and_reject_unknown_keys():
    assert parse_override("train.lr=1e-4") == (["train", "lr"], 1e-4)
    assert parse_override("name='1e-4'") == (["name"], "1e-4")
    config = load_config("drfm", ["train.epochs=3", "model.backbone=resnet18", "train.lr_steps=[1, 2]"])
    assert config["train"]["epochs"] == 3 and config["model"]["backbone"] == "resnet18"
    assert config["train"]["lr_steps"] == [1, 2]
    with pytest.raises(DrfmError, match="train.epoch"):
        load_config("drfm", ["train.epoch=3"])
    with pytest.raises(DrfmError, match="not of the form"):
        load_config("drfm", ["train.epochs"])
    with pytest.raises(DrfmError, match="unknown configuration 'nope'"):
        load_config("nope")
    with pytest.raises(DrfmError, match=r"override 'train.epochs.x=1': unknown configuration key "
                                        r"'train.epochs.x' \(train.epochs is a key, not a section\)"):
        load_config("drfm", ["train.epochs.x=1"])
    with pytest.raises(DrfmError, match=r"override 'train=5': train is a section: set one of its keys "
                                        r"\(train.epochs, "):
        load_config("drfm", ["train=5"])
    with pytest.raises(DrfmError, match=r"override 'train.lr=\[1,': the value is not valid YAML"):
        load_config("drfm", ["train.lr=[1,"])
    with pytest.raises(DrfmError, match=r"override 'seed=2024-13-45': the value is not valid YAML"):
        load_config("drfm", ["seed=2024-13-45"])


def test_user_file_inherits_and_unknown_key_in_file_is_named(tmp_path: Path):
    good = tmp_path / "mine.yaml"
    good.write_text("_BASE_: drfm-cpu\ntrain:\n  epochs: 2\n")
    config = load_config(str(good))
    assert config["train"]["epochs"] == 2 and config["model"]["backbone"] == "efficientnet_lite0"
    bad = tmp_path / "bad.yaml"
    bad.write_text("_BASE_: drfm\ntrian:\n  epochs: 2\n")
    with pytest.raises(DrfmError, match="bad.yaml: unknown configuration key 'trian'"):
        load_config(str(bad))
    bad.write_text("_BASE_: drfm\ntrain:\n  epoch: 2\n")
    with pytest.raises(DrfmError, match=r"bad.yaml: unknown configuration key 'train.epoch' \(known: epochs, "):
        load_config(str(bad))
    loop = tmp_path / "loop.yaml"
    loop.write_text("_BASE_: loop.yaml\n")
    with pytest.raises(DrfmError, match="loops"):
        load_config(str(loop))


# Each rejected value from the reliability issue (and its neighbours): the message names the key
# (as the override was typed) and the values the key allows.
REJECTED = [
    ("train.epochs=abc", r"train.epochs=abc: expected an integer >= 0 \(0: no training, the run holds the "
                         r"untrained start\), got 'abc'"),
    ("train.epochs=-1", r"train.epochs=-1: expected an integer >= 0 .*got -1"),
    ("train.epochs=2.5", r"train.epochs=2.5: expected an integer >= 0 .*got 2.5"),
    ("train.epochs=true", r"train.epochs=true: expected an integer >= 0 .*got true"),
    ("train.lr=fast", r"train.lr=fast: expected a number > 0, got 'fast'"),
    ("train.lr=0", r"train.lr=0: expected a number > 0, got 0"),
    ("train.lr=.nan", r"train.lr=.nan: expected a number > 0, got nan"),
    ("train.lr=.inf", r"train.lr=.inf: expected a number > 0, got inf"),
    ("train.instances_per_id=0", r"train.instances_per_id=0: expected an integer >= 1, got 0"),
    ("train.iters_per_epoch=0", r"train.iters_per_epoch=0: expected an integer >= 1, got 0"),
    ("train.batch_size=0", r"train.batch_size=0: expected an integer >= 1, got 0"),
    ("train.weight_decay=-1e-4", r"train.weight_decay=-1e-4: expected a number >= 0, got -1e-4"),
    ("train.lr_steps=[10, -1]", r"train.lr_steps=\[10, -1\]: expected a list, each item an integer >= 0, "
                                r"got \[10, -1\]"),
    ("train.lr_steps=5", r"train.lr_steps=5: expected a list, each item an integer >= 0, got 5"),
    ("train.num_workers=-1", r"train.num_workers=-1: expected an integer >= 0, got -1"),
    ("train.device=gpu", r"train.device=gpu: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("train.device=cuda:x", r"train.device=cuda:x: expected auto, cpu, cuda or cuda:N, got 'cuda:x'"),
    ("seed=-1", r"seed=-1: expected an integer in \[0, 4294967295\], got -1"),
    ("seed=4294967296", r"seed=4294967296: expected an integer in \[0, 4294967295\], got 4294967296"),
    ("data.split_seed=-1", r"data.split_seed=-1: expected an integer in \[0, 4294967295\], got -1"),
    ("data.lr_height_threshold=0", r"data.lr_height_threshold=0: expected an integer >= 1, got 0"),
    ("data.dataset=nope", r"data.dataset=nope: expected one of caviar, .*, viper or null, got 'nope'"),
    ("data.root=2024", r"data.root=2024: expected a folder path or null, got 2024"),
    ("input.height=8", r"input.height=8: expected an integer >= 32 \(a smaller input leaves the backbone, of "
                       r"total stride 16 or 32, too few pixels to pool\), got 8"),
    ("input.width=8", r"input.width=8: expected an integer >= 16 .*got 8"),
    ("input.pad=-1", r"input.pad=-1: expected an integer >= 0, got -1"),
    ("input.flip=yes please", r"input.flip=yes please: expected true or false, got 'yes please'"),
    ("preprocess.sr_backend=nope", r"preprocess.sr_backend=nope: expected one of bicubic, .*got 'nope'"),
    ("preprocess.factor=0", r"preprocess.factor=0: expected an integer >= 1, got 0"),
    ("model.backbone=vgg", r"model.backbone=vgg: expected one of resnet50, resnet18, efficientnet_lite0, "
                           r"efficientnet_lite1, efficientnet_lite2, got 'vgg'"),
    ("model.pretrained=3", r"model.pretrained=3: expected true or false or a state-dict file path, got 3"),
    ("model.last_stride=3", r"model.last_stride=3: expected one of 1, 2, got 3"),
    ("model.pooling=max", r"model.pooling=max: expected one of avg, gem, got 'max'"),
    ("model.feature_dim=0", r"model.feature_dim=0: expected an integer >= 1 or null, got 0"),
    ("model.fusion=sum", r"model.fusion=sum: expected one of crff, fc, none, got 'sum'"),
    ("method=supervised", r"method=supervised: expected one of drfm, cluster_contrast, got 'supervised'"),
    ("labels.mode=dbscan", r"labels.mode=dbscan: expected one of cpg, dual, joint, sr, all, got 'dbscan'"),
    ("labels.k1=0", r"labels.k1=0: expected an integer >= 1, got 0"),
    ("labels.k2=0", r"labels.k2=0: expected an integer >= 1, got 0"),
    ("labels.k1_candidates=[0, 10]", r"labels.k1_candidates=\[0, 10\]: expected a list, each item an integer >= 1, "
                                     r"got \[0, 10\]"),
    ("labels.k1_candidates=[10, 6, 20]",
     r"labels.k1_candidates=\[10, 6, 20\]: give distinct values in ascending order"),
    ("labels.k1_candidates=[1, 6, 10]", r"labels.k2=2 must be at most every labels.k1_candidates value \(the smallest "
                                        r"is 1\): lower labels.k2 or drop the small candidates"),
    ("labels.eps=1", r"labels.eps=1: expected a number in \(0, 1\), got 1"),
    ("labels.eps=0", r"labels.eps=0: expected a number in \(0, 1\), got 0"),
    ("labels.min_samples=0", r"labels.min_samples=0: expected an integer >= 1, got 0"),
    ("labels.t=0", r"labels.t=0: expected a number in \(0, 1\], got 0"),
    ("labels.t=1.5", r"labels.t=1.5: expected a number in \(0, 1\], got 1.5"),
    ("labels.tau_l=0", r"labels.tau_l=0: expected a number > 0, got 0"),
    ("labels.oracle=1", r"labels.oracle=1: expected true or false, got 1"),
    ("loss.kind=ce", r"loss.kind=ce: expected one of cc, sc, got 'ce'"),
    ("loss.num_negatives=-1", r"loss.num_negatives=-1: expected an integer >= 0, got -1"),
    ("loss.ps_weight=-1", r"loss.ps_weight=-1: expected a number >= 0, got -1"),
    ("loss.tau_c=0", r"loss.tau_c=0: expected a number > 0, got 0"),
    ("memory.momentum=1", r"memory.momentum=1: expected a number in \[0, 1\), got 1"),
    ("memory.cluster_contrast_momentum=-0.1",
     r"memory.cluster_contrast_momentum=-0.1: expected a number in \[0, 1\), got -0.1"),
    ("name=[a]", r"name=\[a\]: expected a name or null, got \['a'\]"),
]


@pytest.mark.parametrize("override,message", REJECTED, ids=[o for o, _ in REJECTED])
def test_rejected_override_names_the_key_and_allowed_values(override: str, message: str):
    with pytest.raises(DrfmError, match=f"^{message}$"):
        load_config("drfm-cpu", [override])


COMBINATIONS = [
    (["labels.k2=31"], r"labels.k2=31 must be at most labels.k1=30 .*: lower labels.k2 or raise labels.k1"),
    (["labels.k1=5"], r"labels.k2=6 must be at most labels.k1=5 "),
    (["train.batch_size=3"], r"train.batch_size=3 must be at least train.instances_per_id=4 "),
    (["method=cluster_contrast"], r"method=cluster_contrast clusters every image: it needs labels.mode=all, got labels.mode=cpg"),
    (["labels.mode=all"], r"labels.mode=all is the single-encoder Cluster Contrast baseline: use method=cluster_contrast"),
    (["model.fusion=none"], r"loss.probability_sharpening=true \(L_ps\) needs a fusion module \(model.fusion "
                            r"crff or fc\) and labels.mode cpg or dual, got model.fusion=none and labels.mode=cpg"),
    (["labels.mode=joint"], r"loss.probability_sharpening=true \(L_ps\) needs .* labels.mode=joint"),
    (["preprocess.sr_backend=span", "preprocess.factor=2"],
     r"preprocess.sr_backend=span only upscales x4: it needs preprocess.factor=4, got 2"),
]


@pytest.mark.parametrize("overrides,message", COMBINATIONS, ids=[" ".join(o) for o, _ in COMBINATIONS])
def test_undefined_combinations_name_the_keys(overrides: list[str], message: str):
    with pytest.raises(DrfmError, match=message):
        load_config("drfm", overrides)


def test_cluster_contrast_combinations_and_that_one_override_may_repair_another():
    with pytest.raises(DrfmError, match=r"method=cluster_contrast has one encoder and no fusion module: it needs "
                                        r"model.fusion=none, got model.fusion=crff"):
        load_config("cc", ["model.fusion=crff"])
    with pytest.raises(DrfmError, match=r"method=cluster_contrast .* it needs loss.instance_consistency=false"):
        load_config("cc", ["loss.instance_consistency=true"])
    assert load_config("cc", ["preprocess.sr_backend=span", "preprocess.factor=2"])["preprocess"]["factor"] == 2
    config = load_config("drfm", ["labels.k2=40", "labels.k1=40", "train.batch_size=2", "train.instances_per_id=2"])
    assert (config["labels"]["k2"], config["train"]["batch_size"]) == (40, 2)


def test_accepted_values_are_converted_to_their_types():
    config = load_config("drfm", ["train.epochs=0", "train.lr=1e-4", "train.iters_per_epoch=1e3",
                                  "loss.ps_weight=2", "model.last_stride=2.0", "model.pretrained=/w/r50.pth",
                                  "model.feature_dim=128", "train.device=cuda:3", "data.root=null",
                                  "name='1e-4'", "train.lr_steps=[]", "labels.eps=5e-1"])
    assert config["train"]["epochs"] == 0  # no training: the run holds the untrained start
    assert config["train"]["lr"] == 1e-4 and config["train"]["iters_per_epoch"] == 1000
    assert type(config["train"]["iters_per_epoch"]) is int and type(config["loss"]["ps_weight"]) is float
    assert config["model"]["last_stride"] == 2 and type(config["model"]["last_stride"]) is int
    assert config["model"]["pretrained"] == "/w/r50.pth" and config["model"]["feature_dim"] == 128
    assert config["train"]["device"] == "cuda:3" and config["data"]["root"] is None
    assert config["name"] == "1e-4" and config["train"]["lr_steps"] == [] and config["labels"]["eps"] == 0.5
    assert load_config("drfm", ["model.pretrained=false"])["model"]["pretrained"] is False


def test_yaml_file_values_are_checked_and_the_file_is_named(tmp_path: Path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("_BASE_: drfm\ntrain:\n  lr: 1e-4\n  weight_decay: 5e-4\n")
    config = load_config(str(mine))
    assert (config["train"]["lr"], config["train"]["weight_decay"]) == (1e-4, 5e-4)  # YAML 1.1 strings
    cases = {
        "_BASE_: drfm\ntrain:\n  epochs: -1\n": r"mine.yaml: train.epochs: expected an integer >= 0 .*got -1$",
        "_BASE_: drfm\ntrain: 5\n": r"mine.yaml: train: expected a mapping of its keys \(epochs, .*\), got 5$",
        "_BASE_: drfm\nseed: {a: 1}\n": r"mine.yaml: seed: expected an integer in \[0, 4294967295\], got \{'a': 1\}$",
        "_BASE_: []\n": r"mine.yaml: _BASE_ must be a configuration name or path, or a non-empty list of them, "
                        r"got \[\]$",
        "_BASE_: 5\n": r"mine.yaml: _BASE_ must be .*, got 5$",
        "_BASE_: drfm\nlabels:\n  k1: 4\n": r"^labels.k2=6 must be at most labels.k1=4 ",
        "train: [1\n": r"mine.yaml: invalid YAML",
        "- 1\n": r"mine.yaml: a configuration must be a mapping",
    }
    for text, message in cases.items():
        mine.write_text(text)
        with pytest.raises(DrfmError, match=message):
            load_config(str(mine))
    mine.write_bytes(b"seed: \xff\n")
    with pytest.raises(DrfmError, match="mine.yaml: a configuration must be UTF-8 text"):
        load_config(str(mine))


def test_validate_config_checks_a_config_changed_after_loading():
    config = load_config("drfm-cpu")
    config["data"].update(dataset="mlr", root="/data/mlr-viper")
    validate_config(config)
    changes = [
        (("data", "dataset"), "nope", r"^data.dataset: expected one of caviar, .* or null, got 'nope'$"),
        (("data", "root"), "", r"^data.root: expected a folder path or null, got ''$"),
        (("train", "lr"), "fast", r"^train.lr: expected a number > 0, got 'fast'$"),
        (("train", "epochs"), -1, r"^train.epochs: expected an integer >= 0 .*got -1$"),
        (("labels", "k2"), 99, r"^labels.k2=99 must be at most labels.k1=10 "),
        (("train", "batch_size"), 2, r"^train.batch_size=2 must be at least train.instances_per_id=4 "),
        (("method",), "cluster_contrast", r"^method=cluster_contrast clusters every image: it needs labels.mode=all"),
    ]
    for path, value, message in changes:
        changed = load_config("drfm-cpu")
        node = changed
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        with pytest.raises(DrfmError, match=message):
            validate_config(changed)
    missing = load_config("drfm")
    del missing["train"]["lr"]
    with pytest.raises(DrfmError, match=r"^missing configuration key 'train.lr'$"):
        validate_config(missing)
    extra = load_config("drfm")
    extra["train"]["lr2"] = 1
    with pytest.raises(DrfmError, match=r"^unknown configuration key 'train.lr2' \(known: epochs, "):
        validate_config(extra)
    extra = load_config("drfm")
    extra["train"] = 5
    with pytest.raises(DrfmError, match=r"^train: expected a mapping of keys \(epochs, .*\), got 5$"):
        validate_config(extra)


def test_saved_config_loads_back_equal(tmp_path: Path):
    config = load_config("drfm-cpu", ["train.lr=1e-5", "name=my run", "data.root=1e5", "model.pretrained=false"])
    config["data"].update(dataset="mlr", cache_dir="/tmp/cache")
    save_config(config, tmp_path / "config.yaml")
    assert load_config(str(tmp_path / "config.yaml")) == config


def test_messages_are_one_line():
    for override in ["train.epochs=a\nb", "train\n.epochs=1", "x\ny", "train.lr='\u2028'"]:
        with pytest.raises(DrfmError) as info:
            load_config("drfm", [override])
        assert len(str(info.value).splitlines()) == 1, str(info.value)


# ------------------------------------------------------------------------------- the type checker
@dataclasses.dataclass(frozen=True)
class _FutureLabels:
    """A schema as the data-derived settings will declare it: a number or "auto"."""

    k1: int | Literal["auto"] = key("k-reciprocal neighbourhood size", ge=1)
    eps: float | Literal["auto"] = key("DBSCAN radius", gt=0, lt=1)
    min_samples: int | None | Literal["auto"] = key("DBSCAN core-point threshold", ge=1)


def test_unions_with_auto_are_declared_in_one_annotation():
    typed = from_mapping(_FutureLabels, {"k1": "auto", "eps": "5e-1", "min_samples": None}, "labels.")
    assert (typed.k1, typed.eps, typed.min_samples) == ("auto", 0.5, None)
    typed = from_mapping(_FutureLabels, {"k1": 30.0, "eps": "auto", "min_samples": "auto"}, "labels.")
    assert (typed.k1, typed.eps, typed.min_samples) == (30, "auto", "auto") and type(typed.k1) is int
    for values, message in [
        ({"k1": 0, "eps": 0.5, "min_samples": 4}, r"^labels.k1: expected an integer >= 1 or auto, got 0$"),
        ({"k1": True, "eps": 0.5, "min_samples": 4}, r"^labels.k1: expected an integer >= 1 or auto, got true$"),
        ({"k1": "Auto", "eps": 0.5, "min_samples": 4}, r"^labels.k1: expected an integer >= 1 or auto, got 'Auto'$"),
        ({"k1": 3, "eps": 1.0, "min_samples": 4}, r"^labels.eps: expected a number in \(0, 1\) or auto, got 1.0$"),
        ({"k1": 3, "eps": 0.5, "min_samples": 0},
         r"^labels.min_samples: expected an integer >= 1 or null or auto, got 0$"),
        ({"k1": 3, "eps": 0.5}, r"^missing configuration key 'labels.min_samples'$"),
    ]:
        with pytest.raises(DrfmError, match=message):
            from_mapping(_FutureLabels, values, "labels.")


@pytest.mark.parametrize("hint,rule,value,result", [
    (int, schema.Rule("n", ge=1), 3, 3),
    (int, schema.Rule("n", ge=1), 3.0, 3),
    (int, schema.Rule("n", ge=1), "1e3", 1000),
    (int, schema.Rule("n"), "-7", -7),
    (float, schema.Rule("x", gt=0), 2, 2.0),
    (float, schema.Rule("x", gt=0), "1e-4", 1e-4),
    (float, schema.Rule("x", gt=0), "+.5E1", 5.0),
    (list[int], schema.Rule("steps", ge=0), [0, 2.0], [0, 2]),
    (bool | str, schema.Rule("p"), False, False),
    (bool | str, schema.Rule("p"), "w.pth", "w.pth"),
    (Literal[1, 2], schema.Rule("s"), 2.0, 2),
    (str | None, schema.Rule("s"), None, None),
])
def test_convert_accepts(hint, rule, value, result):
    converted = schema.convert(hint, rule, value)
    assert converted == result and type(converted) is type(result)


@pytest.mark.parametrize("hint,rule,value", [
    (int, schema.Rule("n"), True),
    (int, schema.Rule("n"), 2.5),
    (int, schema.Rule("n"), float("inf")),
    (int, schema.Rule("n"), "1" * 5000),
    (int, schema.Rule("n"), "\u0663"),  # a non-ASCII digit
    (int, schema.Rule("n"), None),
    (float, schema.Rule("x"), False),
    (float, schema.Rule("x"), float("nan")),
    (float, schema.Rule("x"), "1e999"),
    (float, schema.Rule("x"), 10**400),
    (float, schema.Rule("x"), "inf"),
    (float, schema.Rule("x"), " 1"),
    (float, schema.Rule("x", gt=0, lt=1), 1),
    (str, schema.Rule("s"), ""),
    (str, schema.Rule("s"), "  "),
    (str, schema.Rule("s"), 5),
    (str, schema.Rule("s", choices=lambda: ["a", "b"]), "c"),
    (str, schema.Rule("s", pattern=r"cuda(:\d+)?", text="cuda or cuda:N"), "cuda:"),
    (bool, schema.Rule("b"), 1),
    (bool, schema.Rule("b"), "true"),
    (Literal[1, 2], schema.Rule("s"), True),
    (Literal["a"], schema.Rule("s"), "A"),
    (list[int], schema.Rule("l"), (1, 2)),
    (list[int], schema.Rule("l", ge=0), [1, -1]),
    (type(None), schema.Rule("z"), 0),
])
def test_convert_rejects(hint, rule, value):
    with pytest.raises(schema.Invalid) as info:
        schema.convert(hint, rule, value)
    assert str(info.value) == schema.expected(hint, rule)


def test_the_former_names_cc_of_the_baseline_are_read_as_cluster_contrast(tmp_path):
    saved = tmp_path / "old-run-config.yaml"
    saved.write_text("_BASE_: cc\nmethod: cc\nmemory:\n  cc_momentum: 0.3\n")  # saved before the rename
    config = load_config(str(saved), ["memory.cc_temperature=0.07"])
    assert config["method"] == "cluster_contrast"
    assert config["memory"]["cluster_contrast_momentum"] == 0.3
    assert config["memory"]["cluster_contrast_temperature"] == 0.07
    assert "cc_momentum" not in config["memory"]
    assert load_config("cc", ["method=cc"])["method"] == "cluster_contrast"
    assert load_config("cc")["method"] == "cluster_contrast"
    with pytest.raises(DrfmError, match=r"loss.kind=cluster_contrast: expected one of cc, sc"):
        load_config("drfm", ["loss.kind=cluster_contrast"])  # the alias is the method's alone
