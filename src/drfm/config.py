"""Configurations: YAML files with `_BASE_` inheritance and `key.sub=value` overrides.

Named configurations live in `drfm/configs/NAME.yaml` (drfm, cc, a1 ... a8 and their `-cpu` and
`-demo` variants); a path to any YAML file works too. A file's `_BASE_` (a name or a path relative
to the file) is loaded first and the file's own keys are merged over it, recursively. Every key a
configuration may hold is defined in `base.yaml`: an override or a file that names an unknown key
is an error, so a typo cannot silently change nothing. `_BASE_` may also be a list: the bases
are merged in order (e.g. `_BASE_: [a8, cpu]` is ablation A8 with the CPU settings).
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from drfm.errors import DrfmError

BASE_KEY = "_BASE_"


def config_names() -> list[str]:
    """Names of the configurations shipped with drfm (without the .yaml suffix)."""
    folder = resources.files("drfm") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _config_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if relative_to is not None and not candidate.is_absolute():
            candidate = relative_to / candidate
        if not candidate.is_file():
            raise DrfmError(f"{candidate}: configuration file does not exist")
        return candidate
    packaged = Path(str(resources.files("drfm") / "configs" / f"{name_or_path}.yaml"))
    if not packaged.is_file():
        raise DrfmError(f"unknown configuration '{name_or_path}' (known: {', '.join(config_names())})")
    return packaged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DrfmError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DrfmError(f"{path}: a configuration must be a mapping of keys to values")
    return data


def _merge(base: dict, update: dict, where: str, schema: dict | None) -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if schema is not None and key not in schema:
            raise DrfmError(f"{where}: unknown configuration key '{key}'")
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, where, None if schema is None else schema[key])
        else:
            merged[key] = value
    return merged


def _load_file(path: Path, schema: dict | None, seen: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in seen:
        raise DrfmError(f"{path}: _BASE_ inheritance loops back on itself")
    data = _read_yaml(path)
    base_names = data.pop(BASE_KEY, None)
    if base_names is None:
        return data if schema is None else _merge(schema, data, str(path), schema)
    if isinstance(base_names, str):
        base_names = [base_names]
    merged: dict = {}
    for base_name in base_names:
        base = _load_file(_config_path(base_name, path.parent), schema, seen + (path.resolve(),))
        merged = base if not merged else _merge(merged, _changes(base, schema), str(path), schema)
    return _merge(merged, data, str(path), schema)


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


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'train.lr=1e-4' into (['train', 'lr'], 0.0001); values are parsed as YAML scalars."""
    if "=" not in text:
        raise DrfmError(f"override '{text}' is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads '1e-4' (no dot) as a string
        except ValueError:
            pass
    return key.strip().split("."), value


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The full configuration `name_or_path` (name or YAML path) with `overrides` applied.

    Returns a plain nested dict holding every key of base.yaml. Raises DrfmError for an unknown
    name, an unknown key or a malformed override.
    """
    schema = _load_file(_config_path("base"), None)
    config = _load_file(_config_path(name_or_path), schema)
    for text in overrides:
        keys, value = parse_override(text)
        node = config
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise DrfmError(f"override '{text}': unknown configuration key '{'.'.join(keys[: depth + 1])}'")
            if depth == len(keys) - 1:
                node[key] = value
            else:
                node = node[key]
    config["name"] = config.get("name") or Path(name_or_path).stem
    return config


def save_config(config: dict, path: str | Path) -> None:
    """Write `config` as YAML (atomically) so a run can be rebuilt from its folder alone."""
    from drfm.utils.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
