"""The typed schema of a drfm configuration: one dataclass per section, one field per key.

A key's annotation is its type and its `key(...)` metadata holds its one-line meaning and its range
or choices; the values themselves (the paper's defaults) live in ``drfm/configs/base.yaml``, so the
fields have no defaults. Types are built from ``bool``, ``int``, ``float``, ``str``, ``None``,
``Literal[...]`` and ``list[T]``, joined into unions where a key takes several kinds of value::

    k1: int | Literal["auto"] = key("k-reciprocal neighbourhood size", ge=1)

Bounds (`ge`, `gt`, `le`, `lt`) apply to the numeric members of a union (and to the items of a
list), `choices` and `pattern` to its string members. How a value read from YAML fits a type:

- ``int``: an int, an integral float (``1e3`` is 1000) or a numeric string; never a bool.
- ``float``: an int, a float or a numeric string (YAML 1.1 reads ``1e-4`` as a string); finite.
- ``str``: a non-empty string (a number is not a string: quote it).
- ``bool``: true or false; ``None``: null; ``Literal``: one of its values; ``list[T]``: a list of T.

`convert` returns the value as its declared type or raises `Invalid` saying what the key allows;
`from_mapping` builds a section dataclass from a mapping, naming the key in its DrfmError.
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from drfm.errors import DrfmError

_INTEGER_TEXT = re.compile(r"[-+]?\d+", re.ASCII)
NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)
"""A number as text: what the int and float keys accept from a string."""
SEED_MAX = 2**32 - 1
"""Largest seed: NumPy's legacy seeding (and so every seed's effect) is 32-bit."""


RENAMED_KEYS = {
    "memory.cc_momentum": "memory.cluster_contrast_momentum",
    "memory.cc_temperature": "memory.cluster_contrast_temperature",
}
"""Former dotted key -> today's: configurations saved before a rename still load."""


class Invalid(Exception):
    """A value does not fit its key; the message says what the key allows ("an integer >= 1")."""


@dataclass(frozen=True)
class Rule:
    """What a key means and which values of its type it allows."""

    meaning: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: Callable[[], Sequence[str]] | None = None
    pattern: str | None = None
    text: str | None = None
    note: str | None = None
    aliases: Mapping[str, str] | None = None


def key(meaning: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
        lt: float | None = None, choices: Callable[[], Sequence[str]] | None = None,
        pattern: str | None = None, text: str | None = None, note: str | None = None,
        aliases: Mapping[str, str] | None = None) -> Any:
    """A configuration key: a dataclass field without default holding its `Rule`.

    `choices` returns the allowed strings (called when a string is checked, so a registry is
    read only then); `pattern` is a regular expression a string must match in full; `text` is
    how messages spell the allowed strings (needed with `pattern`; default "a non-empty string"
    or the choices); `note` follows the allowed values in messages; `aliases` maps a former
    spelling of a value to today's (read from configurations saved before a rename).
    """
    if pattern is not None and text is None:
        raise ValueError("a key with a pattern needs a text for its messages")
    return field(metadata={"rule": Rule(meaning, ge, gt, le, lt, choices, pattern, text, note, aliases)})


def section(meaning: str) -> Any:
    """A section: a dataclass field whose annotation is the section's dataclass."""
    return field(metadata={"rule": Rule(meaning)})


# ------------------------------------------------------------------------------- registries
def _dataset_names() -> list[str]:
    """The registered dataset readers (imported when a data.dataset string is checked)."""
    from drfm.data.registry import dataset_names

    return dataset_names()


def _sr_backend_names() -> list[str]:
    """The registered SR backends."""
    from drfm.data.sr_backends import sr_backend_names

    return sr_backend_names()


def _backbone_names() -> Sequence[str]:
    """The backbones build_backbone accepts (imports torch: only when a backbone is checked)."""
    from drfm.models.backbones import BACKBONES

    return BACKBONES


# ------------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class DataConfig:
    """data: which dataset, where, and how it is split."""

    dataset: str | None = key("registered dataset reader (drfm datasets); set by `drfm train --dataset`",
                              choices=_dataset_names)
    root: str | None = key("dataset folder; set by `drfm train --root`", text="a folder path")
    split_seed: int = key("seed of the dataset's random train/test split (VIPeR, CAVIAR, PRID)",
                          ge=0, le=SEED_MAX)
    cache_dir: str | None = key("SLR/SHR twin cache folder; null: RUN_DIR/../cache", text="a folder path")
    lr_height_threshold: int = key("an image lower than this many pixels is low-resolution", ge=1)


_TOO_SMALL = "a smaller input leaves the backbone, of total stride 16 or 32, too few pixels to pool"


@dataclass(frozen=True)
class InputConfig:
    """input: the network input and its augmentation."""

    height: int = key("network input height in pixels", ge=32, note=_TOO_SMALL)
    width: int = key("network input width in pixels", ge=16, note=_TOO_SMALL)
    pad: int = key("random crop after zero padding by this many pixels (0: no crop)", ge=0)
    flip: bool = key("random horizontal flip")


@dataclass(frozen=True)
class PreprocessConfig:
    """preprocess: the SLR and SHR twins."""

    sr_backend: str = key("super-resolution backend making SHR = SR(x_l)", choices=_sr_backend_names)
    sr_weights: str | None = key("local weights folder for the SR backend; null: the backend's own",
                                 text="a folder path")
    factor: int = key("SLR down-sampling and SHR super-resolution factor", ge=1)


@dataclass(frozen=True)
class ModelConfig:
    """model: the encoders E_h, E_l and the fusion module."""

    backbone: str = key("encoder backbone", choices=_backbone_names)
    pretrained: bool | str = key("true: ImageNet weights; false: random; or a state-dict file path",
                                 text="a state-dict file path")
    last_stride: Literal[1, 2] = key("stride of the backbone's last stage (1: twice the feature map)")
    pooling: Literal["avg", "gem"] = key("global pooling of the feature map")
    feature_dim: int | None = key("linear projection after pooling; null: the backbone's channels", ge=1)
    fusion: Literal["crff", "fc", "none"] = key("fusion module: CRFF, one FC layer (A5) or none")
    fusion_init: Literal["sum", "random"] = key(
        "initial output layer of the fusion: sum (fused = a + b at the start) or random (PyTorch's Linear)")


LABEL_MODES_WITH_AMBIGUOUS_LR = ("cpg", "dual")
"""labels.mode values that leave some LR images unlabelled for L_ps (the others label or drop them)."""


@dataclass(frozen=True)
class LabelsConfig:
    """labels: clustering and cross-resolution pseudo-labels."""

    mode: Literal["cpg", "dual", "joint", "sr", "all"] = key(
        "what is clustered: cpg (HR, then CPG), dual (every image on both encoders' features, LR images "
        "left out go to L_ps), joint (HR+LR), sr (HR+SHR), all (CC: every image)")
    k1: int = key("k-reciprocal neighbourhood size of the Jaccard distance (self included)", ge=1)
    k1_candidates: list[int] = key(
        "k1 values, ascending, of which each epoch keeps the most stable clustering (drfm/labels/k1_selection.py; "
        "values above the clustered images are skipped; fewer than 3 left, or []: labels.k1)", ge=1)
    k2: int = key("query-expansion neighbourhood size (self included), at most labels.k1 and every "
                  "labels.k1_candidates", ge=1)
    k2_ratio: float | None = key(
        "null: labels.k2 throughout; r: the labels are made with k2 = max(labels.k2, round(r * k1)) at the k1 "
        "in use, the k1 scan's choice (the scan itself runs at labels.k2); the paper's k2 / k1 is 6 / 30 = 0.2",
        gt=0, le=1)
    eps: float = key("DBSCAN radius on the Jaccard distance", gt=0, lt=1)
    min_samples: int = key("DBSCAN core-point threshold (the point itself counted)", ge=1)
    standardize: bool = key("z-score each feature dimension over the clustered images before the kNN search")
    standardize_by: Literal["all", "resolution"] = key(
        "labels.standardize over all clustered images, or over the HR and the LR images apart (resolution)")
    stripes: int = key("cluster the backbone map pooled over this many horizontal stripes (0: the features)", ge=0)
    color_weight: float = key("weight of each image's stripe colour histograms joined to the clustered "
                              "features (0: none; drfm/labels/color.py)", ge=0)
    color_calibration: Literal["none", "resolution", "resolution_saturation"] = key(
        "colour histograms of the LR images as they are (none), or with their pixels first mapped onto the HR "
        "images' colour distribution (resolution: undoes another camera's colour response), then their "
        "saturation too (resolution_saturation: a camera with washed-out colours)")
    reliability_delta: float | None = key(
        "null: every DBSCAN cluster is kept; d: only clusters that stay the same when eps moves by d keep their "
        "labels (SpCL's cluster reliability, drfm/labels/reliability.py)", gt=0, lt=1)
    min_independence: float = key("with labels.reliability_delta: smallest IoU of a cluster with its clusters at "
                                  "eps + d that keeps the cluster", ge=0, le=1)
    min_compactness: float = key("with labels.reliability_delta: smallest IoU of a member's cluster with its "
                                 "cluster at eps - d that keeps the member", ge=0, le=1)
    outliers: Literal["drop", "singletons"] = key(
        "images DBSCAN leaves out: drop (no label) or singletons (each its own cluster)")
    t: float = key("CPG proportion: T = (N1c / N1) * t of the LR images are labelled", gt=0, le=1)
    tau_l: float = key("CPG temperature of the LR-to-SLR-centroid softmax", gt=0)
    tau_h: float = key("CPG temperature of the SHR-to-HR-centroid softmax", gt=0)
    oracle: bool = key("diagnostic only: ground-truth train ids replace clustering and CPG")


@dataclass(frozen=True)
class LossConfig:
    """loss: which losses and their settings."""

    kind: Literal["cc", "sc"] = key("cc: L_cc over resolution centroids; sc: L_sc over cluster centroids")
    instance_consistency: bool = key("use L_ic (needs the predictor of a two-encoder model)")
    probability_sharpening: bool = key("use L_ps on the ambiguous LR images")
    ps_start_epoch: int = key("first epoch (0-based) that uses L_ps", ge=0)
    ps_weight: float = key("lambda, the weight of L_ps", ge=0)
    num_negatives: int = key("|Q|, the hardest other-cluster centroids L_cc contrasts with", ge=0)
    tau_c: float = key("temperature of L_cc", gt=0)
    tau_s: float = key("sharpening temperature of L_ps", gt=0)
    sc_temperature: float = key("temperature of L_sc", gt=0)


@dataclass(frozen=True)
class MemoryConfig:
    """memory: the instance memories and the Cluster Contrast baseline's cluster memory."""

    momentum: float = key("alpha of the instance memories: v <- alpha * v + (1 - alpha) * f", ge=0, lt=1)
    cluster_contrast_momentum: float = key("momentum of the Cluster Contrast baseline's memory", ge=0, lt=1)
    cluster_contrast_temperature: float = key("temperature of the Cluster Contrast baseline's loss", gt=0)


@dataclass(frozen=True)
class TrainConfig:
    """train: optimisation, batches and the device."""

    epochs: int = key("epochs to train", ge=0, note="0: no training, the run holds the untrained start")
    iters_per_epoch: int = key("optimiser steps per epoch", ge=1)
    batch_size: int = key("labelled samples per step, P x K", ge=1)
    instances_per_id: int = key("K, samples of each pseudo-identity in a batch", ge=1)
    ps_batch_size: int = key("ambiguous LR samples per step for L_ps", ge=1)
    lr: float = key("Adam learning rate", gt=0)
    fusion_lr_scale: float = key("learning rate of the fusion module (CRFF, FC) as a multiple of train.lr", ge=0)
    weight_decay: float = key("Adam weight decay", ge=0)
    lr_steps: list[int] = key("epochs at which the learning rate is multiplied by train.lr_gamma", ge=0)
    lr_gamma: float = key("learning-rate factor at each of train.lr_steps", gt=0)
    extract_batch_size: int = key("images per batch when extracting features", ge=1)
    num_workers: int = key("data-loading worker processes (0: the main process)", ge=0)
    device: str = key("torch device", pattern=r"auto|cpu|cuda(:\d+)?", text="auto, cpu, cuda or cuda:N")
    mixed_precision: bool = key("bf16 autocast of the encoders on a CUDA GPU that supports it (never on CPU)")
    log_label_quality: bool = key("log pseudo-label precision/recall/F against ground truth (logging only)")


@dataclass(frozen=True)
class DrfmConfig:
    """A whole configuration: name, method, seed and the sections, in base.yaml's order."""

    name: str | None = key("name of the configuration; null: the name of its file", text="a name")
    method: Literal["drfm", "cluster_contrast"] = key(
        "drfm: two encoders, CPG, memories (and A1..A8); cluster_contrast: the Cluster Contrast baseline",
        aliases={"cc": "cluster_contrast"})
    seed: int = key("seed of the model's initialisation, sampling and augmentation", ge=0, le=SEED_MAX)
    data: DataConfig = section("dataset")
    input: InputConfig = section("network input")
    preprocess: PreprocessConfig = section("SLR/SHR twins")
    model: ModelConfig = section("networks")
    labels: LabelsConfig = section("pseudo-labels")
    loss: LossConfig = section("losses")
    memory: MemoryConfig = section("memories")
    train: TrainConfig = section("optimisation")


# ------------------------------------------------------------------------------- lookup
@dataclass(frozen=True)
class Entry:
    """One field of a section: its annotation and rule, and its dataclass when it is a section."""

    hint: Any
    rule: Rule
    section: type | None


@functools.cache
def entries(cls: type) -> Mapping[str, Entry]:
    """The fields of section dataclass `cls`, in declaration order (read-only)."""
    hints = get_type_hints(cls)
    return types.MappingProxyType({
        f.name: Entry(hints[f.name], f.metadata["rule"], hints[f.name] if is_dataclass(hints[f.name]) else None)
        for f in fields(cls)})


def leaf_paths(cls: type = DrfmConfig, prefix: str = "") -> list[str]:
    """Dotted paths of every key under `cls` (sections excluded), in declaration order."""
    paths = []
    for name, entry in entries(cls).items():
        if entry.section is None:
            paths.append(prefix + name)
        else:
            paths += leaf_paths(entry.section, f"{prefix}{name}.")
    return paths


# ------------------------------------------------------------------------------- conversion
def show(value: Any) -> str:
    """`value` as a message shows it, on one line: YAML spelling for true/false/null and for a
    number read as text (YAML 1.1's `1e-4`), repr else."""
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except ValueError:  # an int too long for Python's integer-to-text limit
        text = f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 80 else text[:77] + "..."


def quote(text: str) -> str:
    """`text` in single quotes for a one-line message; its repr when it holds unprintable characters."""
    return f"'{text}'" if text.isprintable() else repr(text)


def _number_text(value: float) -> str:
    """A bound as messages write it: 1 rather than 1.0."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _range_text(rule: Rule) -> str:
    """The bounds of `rule` as words after "an integer"/"a number": " >= 1", " in (0, 1]" or ""."""
    low = (">=", "[", rule.ge) if rule.ge is not None else (">", "(", rule.gt) if rule.gt is not None else None
    high = ("<=", "]", rule.le) if rule.le is not None else ("<", ")", rule.lt) if rule.lt is not None else None
    if low and high:
        return f" in {low[1]}{_number_text(low[2])}, {_number_text(high[2])}{high[1]}"
    if low:
        return f" {low[0]} {_number_text(low[2])}"
    if high:
        return f" {high[0]} {_number_text(high[2])}"
    return ""


def describe(hint: Any, rule: Rule) -> str:
    """What type `hint` under `rule` allows, in words: "an integer >= 1 or auto"."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(member, rule) for member in get_args(hint))
    if origin is Literal:
        options = [show(option) if not isinstance(option, str) else option for option in get_args(hint)]
        return options[0] if len(options) == 1 else f"one of {', '.join(options)}"
    if origin is list:
        return f"a list, each item {describe(get_args(hint)[0], rule)}"
    if hint is type(None):
        return "null"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer" + _range_text(rule)
    if hint is float:
        return "a number" + _range_text(rule)
    if hint is str:
        if rule.text is not None:
            return rule.text
        return f"one of {', '.join(rule.choices())}" if rule.choices is not None else "a non-empty string"
    raise TypeError(f"unsupported configuration type {hint!r}")


def expected(hint: Any, rule: Rule) -> str:
    """`describe` followed by the rule's note, if any."""
    return describe(hint, rule) + (f" ({rule.note})" if rule.note else "")


def _in_range(number: float, rule: Rule) -> bool:
    """Whether `number` is within every bound of `rule`."""
    return ((rule.ge is None or number >= rule.ge) and (rule.gt is None or number > rule.gt)
            and (rule.le is None or number <= rule.le) and (rule.lt is None or number < rule.lt))


def _as_int(value: Any) -> int | None:
    """`value` as an int when it is one, an integral finite float or such a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if _INTEGER_TEXT.fullmatch(value):
            try:
                return int(value)
            except ValueError:  # longer than Python's integer-to-text limit
                return None
        value = _as_float(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    """`value` as a finite float when it is an int, a float or a numeric string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str) and not NUMBER_TEXT.fullmatch(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _literal_matches(option: Any, value: Any) -> bool:
    """Whether `value` is Literal `option`: the same string or bool, or an int equal to it."""
    if isinstance(option, bool) or isinstance(option, str):
        return type(value) is type(option) and value == option
    return _as_int(value) == option


def convert(hint: Any, rule: Rule, value: Any) -> Any:
    """`value` as type `hint` within `rule` (see the module docstring); Invalid naming what fits."""
    if rule.aliases and isinstance(value, str) and value in rule.aliases:
        value = rule.aliases[value]
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for member in get_args(hint):
            try:
                return convert(member, rule, value)
            except Invalid:
                continue
    elif origin is Literal:
        for option in get_args(hint):
            if _literal_matches(option, value):
                return option
    elif origin is list:
        if isinstance(value, list):
            try:
                return [convert(get_args(hint)[0], rule, item) for item in value]
            except Invalid:
                pass
    elif hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        number = _as_int(value)
        if number is not None and _in_range(number, rule):
            return number
    elif hint is float:
        number = _as_float(value)
        if number is not None and _in_range(number, rule):
            return number
    elif hint is str:
        if (isinstance(value, str) and value.strip()
                and (rule.choices is None or value in rule.choices())
                and (rule.pattern is None or re.fullmatch(rule.pattern, value))):
            return value
    else:
        raise TypeError(f"unsupported configuration type {hint!r}")
    raise Invalid(expected(hint, rule))


def from_mapping(cls: type, mapping: Any, prefix: str = "") -> Any:
    """Section dataclass `cls` from `mapping` (every key, no other), values converted.

    `prefix` is the section's dotted path with a trailing dot ("train."); DrfmError naming the
    key and what it allows for a missing, unknown or unfitting key.
    """
    known = entries(cls)
    if not isinstance(mapping, dict):
        raise DrfmError(f"{prefix[:-1] or 'a configuration'}: expected a mapping of keys "
                        f"({', '.join(known)}), got {show(mapping)}")
    for name in mapping:
        if name not in known:
            raise DrfmError(f"unknown configuration key {quote(f'{prefix}{name}')} (known: {', '.join(known)})")
    values = {}
    for name, entry in known.items():
        if name not in mapping:
            raise DrfmError(f"missing configuration key '{prefix}{name}'")
        if entry.section is not None:
            values[name] = from_mapping(entry.section, mapping[name], f"{prefix}{name}.")
            continue
        try:
            values[name] = convert(entry.hint, entry.rule, mapping[name])
        except Invalid as exc:
            raise DrfmError(f"{prefix}{name}: expected {exc}, got {show(mapping[name])}") from None
    return cls(**values)
