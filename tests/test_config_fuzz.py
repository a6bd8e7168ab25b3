"""Property-based fuzzing of configuration loading (hypothesis).

Whatever the overrides or the YAML file, load_config either returns a configuration that passes
validate_config or raises a one-line DrfmError: never another exception. Values drawn from each
key's declared type and range are set exactly, and a validated configuration saved with
save_config loads back equal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drfm import config_schema as schema
from drfm.config import load_config, save_config, typed_config, validate_config
from drfm.config_schema import DrfmConfig
from drfm.errors import DrfmError

LEAVES = schema.leaf_paths()
SECTIONS = [name for name, entry in schema.entries(DrfmConfig).items() if entry.section is not None]
NAMES = ["drfm", "cc", "a1", "a5", "drfm-demo", "cc-cpu"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# YAML-ish words: every kind of scalar, the choices of the keys, and malformed YAML.
WORDS = ["true", "false", "yes", "null", "~", "", " ", "auto", "cpu", "cuda", "cuda:0", "cuda:x", "mps", "abc",
         "1e-4", "-1e-4", "1E3", "1e999", ".inf", "-.inf", ".nan", "nan", "inf", "0", "-0", "1", "-1", "0.5",
         "1.0", "2.5", "4294967296", "0x1F", "0o17", "1_000", "[]", "[1, 2]", "[1, -2]", "[a]", "[[1]]",
         "{a: 1}", "{}", "'1'", '"x"', "'auto'", "2024-01-01", "2024-13-45", "[1,", "{", ": x", "- a", "a: b",
         "!!python/object:os.system", "!!binary xx", "&a x", "*a", "%TAG", "@", "`", "resnet18",
         "efficientnet_lite0", "bicubic", "span", "swin2sr", "mlr", "viper", "drfm", "cc", "sc", "cpg", "joint",
         "sr", "all", "none", "fc", "crff", "gem", "avg", "/some/path", "~/weights.pth", "9" * 5000]

values_text = st.one_of(
    st.sampled_from(WORDS),
    st.integers(-3, 300).map(str),
    st.integers().map(str),
    st.floats().map(repr),
    st.floats(0, 1).map(str),
    st.lists(st.integers(-2, 50), max_size=4).map(str),
    st.text(max_size=20),
)
key_paths = st.one_of(
    st.sampled_from(LEAVES),
    st.sampled_from(SECTIONS),
    st.builds(lambda path, tail: f"{path}.{tail}", st.sampled_from(LEAVES + SECTIONS), st.text(max_size=6)),
    st.text(max_size=20),
)
override_texts = st.lists(
    st.one_of(st.builds(lambda path, value: f"{path}={value}", key_paths, values_text), st.text(max_size=15)),
    max_size=5)


def _check_outcome(load: Any) -> dict | None:
    """The configuration `load()` returns, validated, or None after a one-line DrfmError."""
    try:
        config = load()
    except DrfmError as exc:
        message = str(exc)
        assert message.strip() and len(message.splitlines()) == 1, repr(message)
        return None
    validate_config(config)
    assert config == dataclasses.asdict(typed_config(config))
    return config


@FUZZ
@given(name=st.sampled_from(NAMES), overrides=override_texts)
def test_any_overrides_give_a_valid_config_or_a_drfm_error(name: str, overrides: list[str]):
    _check_outcome(lambda: load_config(name, overrides))


# ------------------------------------------------------------------------------- valid values
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0xFFFF), min_size=1, max_size=12)


def _strategy(hint: Any, rule: schema.Rule) -> st.SearchStrategy:
    """Values of type `hint` within `rule`: what the key accepts."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return st.one_of([_strategy(member, rule) for member in get_args(hint)])
    if origin is Literal:
        return st.sampled_from(get_args(hint))
    if origin is list:
        return st.lists(_strategy(get_args(hint)[0], rule), max_size=4)
    if hint is type(None):
        return st.none()
    if hint is bool:
        return st.booleans()
    low = rule.ge if rule.ge is not None else rule.gt
    high = rule.le if rule.le is not None else rule.lt
    if hint is int:
        low = int(low + (rule.gt is not None)) if low is not None else -1000
        high = int(high - (rule.lt is not None)) if high is not None else low + 1000
        return st.integers(low, high)
    if hint is float:
        return st.floats(low, high if high is not None else 1e6, allow_nan=False, allow_infinity=False,
                         exclude_min=rule.gt is not None, exclude_max=rule.lt is not None)
    if rule.choices is not None:
        return st.sampled_from(list(rule.choices()))
    if rule.pattern is not None:
        return st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "cuda:17"])
    return _TEXT.filter(str.strip)


def _entry(path: str) -> schema.Entry:
    *sections, name = path.split(".")
    cls = DrfmConfig
    for part in sections:
        cls = schema.entries(cls)[part].section
    return schema.entries(cls)[name]


VALID = {path: _strategy(_entry(path).hint, _entry(path).rule) for path in LEAVES}


def _as_yaml(value: Any) -> str:
    """`value` as override text that YAML reads back as `value`."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, list):
        return "[" + ", ".join(_as_yaml(v) for v in value) + "]"
    return repr(value)


valid_overrides = st.lists(
    st.sampled_from(LEAVES).flatmap(lambda path: VALID[path].map(lambda value: (path, value))), max_size=6)


def _get(config: dict, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


@FUZZ
@given(name=st.sampled_from(NAMES), pairs=valid_overrides)
def test_values_in_range_are_set_exactly_or_a_combination_is_named(name: str, pairs: list[tuple[str, Any]]):
    config = _check_outcome(lambda: load_config(name, [f"{path}={_as_yaml(value)}" for path, value in pairs]))
    if config is not None:
        for path, value in dict(pairs).items():
            expected = name if path == "name" and value is None else value  # null name: the file's
            got = _get(config, path)
            assert got == expected and type(got) is type(expected), (path, value, got)


# ------------------------------------------------------------------------------- YAML files
_FILE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)  # UTF-8 encodable
file_keys = st.one_of(st.sampled_from(LEAVES + SECTIONS + [p.split(".")[-1] for p in LEAVES] + ["_BASE_"]),
                      _FILE_TEXT, st.integers(-2, 2))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _FILE_TEXT, st.sampled_from(WORDS))
trees = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(file_keys, children, max_size=4), max_leaves=12)
bases = st.one_of(st.none(), st.sampled_from(["drfm", "cc-cpu", "a8", ["a8", "cpu"], ["cc", "demo"], [], 5,
                                              "nope", "missing.yaml", "fuzz.yaml", [None]]))
section_bodies = st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(file_keys, trees, max_size=3)
                                 | trees, max_size=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for the generated files, rewritten by every example."""
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(base=bases, sections=section_bodies, others=st.dictionaries(file_keys, trees, max_size=3))
def test_any_yaml_file_gives_a_valid_config_or_a_drfm_error(folder: Path, base: Any, sections: dict, others: dict):
    document = {**others, **sections}
    if base is not None:
        document["_BASE_"] = base
    path = folder / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    _check_outcome(lambda: load_config(str(path)))


# ------------------------------------------------------------------------------- round trip
@FUZZ
@given(name=st.sampled_from(NAMES), pairs=valid_overrides)
def test_a_validated_config_saved_and_loaded_is_equal(name: str, pairs: list[tuple[str, Any]]):
    config = load_config(name)
    for path, value in pairs:
        *sections, last = path.split(".")
        node = config
        for part in sections:
            node = node[part]
        node[last] = value
    try:
        validate_config(config)
    except DrfmError:
        return  # a combination the method does not define: nothing to save
    with tempfile.TemporaryDirectory() as tmp:
        save_config(config, Path(tmp) / "config.yaml")
        loaded = load_config(str(Path(tmp) / "config.yaml"))
    assert loaded == {**config, "name": config["name"] or "config"}  # a null name becomes the file's
    assert all(not isinstance(v, float) or math.isfinite(v) for v in _leaves(loaded))


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]
