"""Configurations: YAML files with `_BASE_` inheritance and `key.sub=value` overrides, typed and checked.

Named configurations live in `drfm/configs/NAME.yaml` (drfm, cc, a1 ... a8 and their `-cpu` and
`-demo` variants); a path to any YAML file works too. A file's `_BASE_` (a name or a path relative
to the file) is loaded first and the file's own keys are merged over it, recursively. `_BASE_` may
also be a list: the bases are merged in order (e.g. `_BASE_: [a8, cpu]` is ablation A8 with the
CPU settings). `base.yaml` holds every key with the paper's defaults.

Every key has a type and a range or a set of choices (`drfm.config_schema`): each file's keys and
each override are checked as they are read, the whole configuration, with the combinations of
keys the method does not define, once it is complete (`validate_config`). A problem is a one-line
DrfmError naming the file or the override, the key and the values it allows; an unknown key is an
error too, so a typo cannot silently change nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from drfm import config_schema as schema
from drfm.config_schema import DrfmConfig, quote, show
from drfm.errors import DrfmError

BASE_KEY = "_BASE_"

# What reading YAML text may raise besides YAMLError: ValueError for impossible dates
# ("2024-13-45") and integers beyond Python's integer-to-text limit, RecursionError for very
# deep nesting.
_YAML_ERRORS = (yaml.YAMLError, ValueError, RecursionError)


def config_names() -> list[str]:
    """Names of the configurations shipped with drfm (without the .yaml suffix)."""
    folder = resources.files("drfm") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _config_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """The file of a configuration name, or of a YAML path (relative to `relative_to`)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if relative_to is not None and not candidate.is_absolute():
            candidate = relative_to / candidate
        if not candidate.is_file():
            raise DrfmError(f"{candidate}: configuration file does not exist")
        return candidate
    packaged = Path(str(resources.files("drfm") / "configs" / f"{name_or_path}.yaml"))
    if not packaged.is_file():
        raise DrfmError(f"unknown configuration {quote(name_or_path)} (known: {', '.join(config_names())})")
    return packaged


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line DrfmError."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _read_yaml(path: Path) -> dict:
    """The mapping YAML file `path` holds; DrfmError naming the file when it is not one."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise DrfmError(f"{path}: a configuration must be UTF-8 text") from None
    except _YAML_ERRORS as exc:
        raise DrfmError(f"{path}: invalid YAML ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise DrfmError(f"{path}: a configuration must be a mapping of keys to values")
    return data


def _checked(data: dict, where: str, cls: type = DrfmConfig, prefix: str = "") -> dict:
    """The keys `data` sets in section `cls` (dotted path `prefix`), values converted to their
    types; DrfmError naming `where` (the file), the key and the values it allows."""
    known = schema.entries(cls)
    checked = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        if path in schema.RENAMED_KEYS:
            path = schema.RENAMED_KEYS[path]
            name = path.rsplit(".", 1)[-1]
        entry = known.get(name)
        if entry is None:
            raise DrfmError(f"{where}: unknown configuration key {quote(path)} (known: {', '.join(known)})")
        if entry.section is not None:
            if not isinstance(value, dict):
                raise DrfmError(f"{where}: {path}: expected a mapping of its keys "
                                f"({', '.join(schema.entries(entry.section))}), got {show(value)}")
            checked[name] = _checked(value, where, entry.section, f"{path}.")
            continue
        try:
            checked[name] = schema.convert(entry.hint, entry.rule, value)
        except schema.Invalid as exc:
            raise DrfmError(f"{where}: {path}: expected {exc}, got {show(value)}") from None
    return checked


def _merge(base: dict, update: dict) -> dict:
    """A copy of `base` with `update` merged over it, section by section."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _base_names(value: Any, path: Path) -> list[str]:
    """The `_BASE_` value of file `path` as a list of names; DrfmError when it is not one."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise DrfmError(f"{path}: {BASE_KEY} must be a configuration name or path, or a non-empty list "
                        f"of them, got {show(value)}")
    return names


def _load_file(path: Path, defaults: dict | None, seen: tuple[Path, ...] = ()) -> dict:
    """The keys of file `path` merged over its bases (over `defaults` when it has none), checked."""
    if path.resolve() in seen:
        raise DrfmError(f"{path}: _BASE_ inheritance loops back on itself")
    data = _read_yaml(path)
    base_value = data.pop(BASE_KEY, None)
    data = _checked(data, str(path))
    if base_value is None:
        return data if defaults is None else _merge(defaults, data)
    merged: dict = {}
    for base_name in _base_names(base_value, path):
        base = _load_file(_config_path(base_name, path.parent), defaults, seen + (path.resolve(),))
        merged = base if not merged else _merge(merged, _changes(base, defaults or {}))
    return _merge(merged, data)


def _changes(config: dict, reference: dict) -> dict:
    """The keys of `config` whose values differ from `reference` (recursively)."""
    changed = {}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(reference.get(key), dict):
            sub = _changes(value, reference[key])
            if sub:
                changed[key] = sub
        elif reference.get(key, object()) != value:
            changed[key] = value
    return changed


def _split_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=1e-4' -> (['train', 'lr'], '1e-4'): the value as YAML reads it."""
    if "=" not in text:
        raise DrfmError(f"override {quote(text)} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except _YAML_ERRORS as exc:
        raise DrfmError(f"override {quote(text)}: the value is not valid YAML ({_first_line(exc)})") from None
    return key.strip().split("."), value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'train.lr=1e-4' into (['train', 'lr'], 0.0001).

    The value is read as YAML ('[1, 2]' is a list, 'null' or nothing is null, quotes make a
    string); an unquoted number in exponent form is a float although YAML 1.1 reads `1e-4` as a
    string. DrfmError when there is no '=' or the value is not valid YAML.
    """
    keys, value = _split_override(text)
    raw = text.split("=", 1)[1].strip()
    if isinstance(value, str) and schema.NUMBER_TEXT.fullmatch(raw):
        value = float(raw)
    return keys, value


def _apply_override(config: dict, text: str) -> None:
    """Set the key override `text` names to its value, checked; DrfmError naming the override.

    The value is converted by the key's type, so `1e-4` is a number for train.lr and the name
    '1e-4' for name.
    """
    keys, value = _split_override(text)
    keys = schema.RENAMED_KEYS.get(".".join(keys), ".".join(keys)).split(".")
    cls: type = DrfmConfig
    node = config
    for depth, name in enumerate(keys):
        path = ".".join(keys[: depth + 1])
        known = schema.entries(cls)
        entry = known.get(name)
        if entry is None:
            raise DrfmError(f"override {quote(text)}: unknown configuration key {quote(path)} "
                            f"(known: {', '.join(known)})")
        last = depth == len(keys) - 1
        if entry.section is None and not last:
            raise DrfmError(f"override {quote(text)}: unknown configuration key {quote('.'.join(keys))} "
                            f"({path} is a key, not a section)")
        if entry.section is not None and last:
            raise DrfmError(f"override {quote(text)}: {path} is a section: set one of its keys "
                            f"({', '.join(f'{path}.{k}' for k in schema.entries(entry.section))})")
        if entry.section is not None:
            cls, node = entry.section, node.setdefault(name, {})
            continue
        try:
            node[name] = schema.convert(entry.hint, entry.rule, value)
        except schema.Invalid as exc:
            label = text if text.isprintable() else repr(text)
            raise DrfmError(f"{label}: expected {exc}, got {show(value)}") from None


def _check_combinations(config: DrfmConfig) -> None:
    """DrfmError for a combination of keys the method does not define."""
    labels, loss, model, train, pre = config.labels, config.loss, config.model, config.train, config.preprocess
    baseline = config.method == "cluster_contrast"
    if baseline and labels.mode != "all":
        raise DrfmError(f"method=cluster_contrast clusters every image: it needs labels.mode=all, "
                        f"got labels.mode={labels.mode}")
    if config.method == "drfm" and labels.mode == "all":
        raise DrfmError("labels.mode=all is the single-encoder Cluster Contrast baseline: use "
                        "method=cluster_contrast, or labels.mode cpg, dual, joint or sr with method=drfm")
    if baseline and model.fusion != "none":
        raise DrfmError(f"method=cluster_contrast has one encoder and no fusion module: it needs model.fusion=none, "
                        f"got model.fusion={model.fusion}")
    if baseline and loss.instance_consistency:
        raise DrfmError("method=cluster_contrast has one encoder and no predictor: it needs "
                        "loss.instance_consistency=false")
    if loss.probability_sharpening and (model.fusion == "none"
                                        or labels.mode not in schema.LABEL_MODES_WITH_AMBIGUOUS_LR):
        raise DrfmError(f"loss.probability_sharpening=true (L_ps) needs a fusion module (model.fusion crff or "
                        f"fc) and labels.mode cpg or dual, got model.fusion={model.fusion} and "
                        f"labels.mode={labels.mode}; or set loss.probability_sharpening=false")
    if labels.k2 > labels.k1:
        raise DrfmError(f"labels.k2={labels.k2} must be at most labels.k1={labels.k1} (query expansion "
                        f"averages over the k2 nearest of the k1 neighbours): lower labels.k2 or raise labels.k1")
    if labels.k1_candidates != sorted(set(labels.k1_candidates)):
        raise DrfmError(f"labels.k1_candidates={labels.k1_candidates}: give distinct values in ascending order")
    if labels.k1_candidates and labels.k2 > labels.k1_candidates[0]:
        raise DrfmError(f"labels.k2={labels.k2} must be at most every labels.k1_candidates value "
                        f"(the smallest is {labels.k1_candidates[0]}): lower labels.k2 or drop the small candidates")
    if train.batch_size < train.instances_per_id:
        raise DrfmError(f"train.batch_size={train.batch_size} must be at least "
                        f"train.instances_per_id={train.instances_per_id} (a batch holds "
                        f"batch_size // instances_per_id pseudo-identities of instances_per_id samples each)")
    if config.method == "drfm" and pre.sr_backend == "span":
        from drfm.data.sr_backends import SPAN_SCALE

        if pre.factor != SPAN_SCALE:
            raise DrfmError(f"preprocess.sr_backend=span only upscales x{SPAN_SCALE}: it needs "
                            f"preprocess.factor={SPAN_SCALE}, got {pre.factor} (or use preprocess.sr_backend=bicubic)")


def typed_config(config: dict) -> DrfmConfig:
    """`config` (every key, as load_config returns it) as a DrfmConfig, values converted.

    DrfmError naming the key and the values it allows for a missing, unknown or unfitting key,
    and naming the keys for a combination the method does not define (see `validate_config`).
    """
    typed = schema.from_mapping(DrfmConfig, config)
    _check_combinations(typed)
    return typed


def validate_config(config: dict) -> None:
    """DrfmError unless `config` is a complete configuration the method defines.

    Checks every key's type and range (as `load_config` does) and the combinations:
    method=cluster_contrast needs labels.mode=all, model.fusion=none and no L_ic; labels.mode=all
    needs method=cluster_contrast; L_ps needs a fusion module and labels.mode cpg or dual; labels.k2
    <= labels.k1 and every labels.k1_candidates value (distinct, ascending); train.batch_size >=
    train.instances_per_id; the span SR backend needs preprocess.factor=4. Call it on a configuration changed after loading (e.g. data.dataset set by
    the command line) before any file is written or any data read.
    """
    typed_config(config)


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The full configuration `name_or_path` (name or YAML path) with `overrides` applied.

    Returns a plain nested dict holding every key of base.yaml, each value of its declared type
    (`drfm.config_schema`). Raises DrfmError for an unknown name, an unknown key, a malformed
    override, a value outside its key's range or choices, or a combination the method does not
    define; the message names the file or override and the key.
    """
    defaults = _load_file(_config_path("base"), None)
    config = _load_file(_config_path(name_or_path), defaults)
    for text in overrides:
        _apply_override(config, text)
    config["name"] = config.get("name") or Path(name_or_path).stem
    return dataclasses.asdict(typed_config(config))


def complete_config(data: dict, where: str) -> dict:
    """A configuration mapping stored elsewhere (a checkpoint's) as `load_config` returns one:
    each key checked, merged over base.yaml's defaults, typed, combinations validated; DrfmError
    naming `where` and the key."""
    defaults = _load_file(_config_path("base"), None)
    try:
        return dataclasses.asdict(typed_config(_merge(defaults, _checked(data, where))))
    except DrfmError as exc:
        message = str(exc)
        raise DrfmError(message if message.startswith(where) else f"{where}: {message}") from None


def save_config(config: dict, path: str | Path) -> None:
    """Write `config` as YAML (atomically) so a run can be rebuilt from its folder alone."""
    from drfm.utils.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
