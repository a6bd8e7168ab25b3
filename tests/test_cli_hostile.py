"""Hostile input through the real `drfm` entry point, one table row per input.

Every row must end in exit status 2 and exactly one line on stderr, `drfm: error: ...`, naming
the path, option or device and the problem, with no traceback; and nothing may be half-written
or lost: no file appears in the output folder, no temporary file or folder is left anywhere, and
every input file (including outputs that already existed) is byte-for-byte as it was.

Rows run in-process (drfm.cli.main with capsys); the rows marked `child` also run as a true
`python -m drfm` subprocess. System errors (full disk, a read-only folder) are simulated with a
fault injected in-process, since tests may run as root, where chmod does not stop writes; a real
read-only folder is tried as well when not root.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.cli import main

KINDS = ("missing path", "wrong file type", "corrupt file", "bad number", "output in the way",
         "unavailable device", "system error", "would overwrite data")
COMMANDS = ("extract", "evaluate --features", "evaluate --run", "search", "export", "bench cluster", "demo",
            "prepare sr")


@dataclass(frozen=True)
class Fault:
    """An OSError(`code`) raised in-process by `call` when it touches a file named `name`.

    call: "savez" (numpy.savez), "write_text" (Path.write_text), "mkdtemp" (tempfile.mkdtemp of
    atomic_path: the output folder is read-only), "replace" (os.replace), "png" (PIL image save).
    """

    call: str
    code: int
    name: str


@dataclass(frozen=True)
class Case:
    """One hostile input: `argv` and `words` (expected in the message) are formatted with the
    paths {run}, {world}, {query}, {gallery}, {inputs} (prepared hostile files) and {out} (an
    empty folder for outputs)."""

    command: str
    kind: str
    argv: tuple[str, ...]
    words: str
    fault: Fault | None = None
    child: bool = False


def case(command: str, kind: str, args: str, words: str, fault: Fault | None = None, child: bool = False) -> Case:
    """A Case from a space-separated argument string (no argument contains a space)."""
    return Case(command, kind, tuple(args.split()), words, fault, child)


ENOSPC, EACCES = errno.ENOSPC, errno.EACCES
EXTRACT = "extract --quiet --run {run} --out"
FEATURES = "evaluate --features"
EVAL_OK = "evaluate --features {inputs}/features.npz"
EVAL_RUN = "evaluate --quiet --run"
SEARCH = "search --quiet --model {run} --query {query} --gallery {gallery}"
SEARCH_INDEXED = SEARCH + " --index {out}/i.npz"
EXPORT = "export --model {run} --format torchscript"
BENCH = "bench cluster --dim 8 --no-floor --n"
SR = "prepare sr --dataset mlr --root {world} --no-progress"

CASES: list[Case] = [
    # drfm extract
    case("extract", "missing path", "extract --run {inputs}/nowhere --out {out}/f.npz", "{inputs}/nowhere: no such run",
         child=True),
    case("extract", "wrong file type", "extract --run {inputs}/text.txt --out {out}/f.npz", "unreadable checkpoint"),
    case("extract", "wrong file type", "extract --run {inputs}/folder --out {out}/f.npz", "not a run folder"),
    case("extract", "wrong file type", EXTRACT + " {out}/f.txt", "--out {out}/f.txt: a features file must end in .npz"),
    case("extract", "corrupt file", "extract --run {inputs}/truncated.pt --out {out}/f.npz", "unreadable checkpoint"),
    case("extract", "corrupt file", "extract --run {inputs}/broken_run --out {out}/f.npz", "unreadable checkpoint"),
    case("extract", "output in the way", EXTRACT + " {inputs}/folder.npz", "--out {inputs}/folder.npz: is a folder"),
    case("extract", "output in the way", EXTRACT + " {inputs}/text.txt/f.npz",
         "{inputs}/text.txt is a file, not a folder"),
    case("extract", "system error", EXTRACT + " {inputs}/old.npz", "{inputs}/old.npz: no space left on device",
         Fault("savez", ENOSPC, "old.npz")),
    case("extract", "system error", EXTRACT + " {out}/f.npz", "{out}/f.npz: permission denied",
         Fault("mkdtemp", EACCES, "f.npz")),
    case("extract", "missing path", "extract --out {out}/f.npz", "the following arguments are required: --run"),
    # drfm evaluate --features
    case("evaluate --features", "missing path", FEATURES + " {inputs}/nowhere.npz",
         "{inputs}/nowhere.npz: features file not found"),
    case("evaluate --features", "wrong file type", FEATURES + " {inputs}/array.npy", "single .npy array", child=True),
    case("evaluate --features", "wrong file type", FEATURES + " {inputs}/text.txt",
         "{inputs}/text.txt: not a readable .npz"),
    case("evaluate --features", "wrong file type", FEATURES + " {inputs}/folder", "{inputs}/folder: is a folder"),
    case("evaluate --features", "wrong file type", FEATURES + " {inputs}/empty.npz", "not a zip archive"),
    case("evaluate --features", "wrong file type", FEATURES + " {inputs}/image.png", "not a zip archive"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/truncated.npz",
         "{inputs}/truncated.npz: not a readable"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/garbage.npz",
         "{inputs}/garbage.npz: not a readable"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/object.npz", "not a readable .npz"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/nan.npz", "NaN or inf"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/nokey.npz", "missing key(s) query_pids"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/ragged.npz", "gallery_pids has 3 entries"),
    case("evaluate --features", "bad number", EVAL_OK + " --seed -1", "argument --seed: must be at least 0, got -1"),
    case("evaluate --features", "bad number", EVAL_OK + " --trials 0", "argument --trials: must be at least 1"),
    case("evaluate --features", "bad number", EVAL_OK + " --trials many", "expected an integer, got 'many'"),
    case("evaluate --features", "bad number", EVAL_OK + " --visualize 0", "argument --visualize: must be at least 1"),
    case("evaluate --features", "bad number", EVAL_OK + " --protocol cmc", "argument --protocol: invalid choice"),
    case("evaluate --features", "output in the way", EVAL_OK + " --json {inputs}/folder",
         "--json {inputs}/folder: is a folder"),
    case("evaluate --features", "output in the way", EVAL_OK + " --json {inputs}/text.txt/r.json",
         "{inputs}/text.txt is a file, not a folder"),
    case("evaluate --features", "output in the way", EVAL_OK + " --visualize 2 --visualize-out {inputs}/text.txt",
         "--visualize-out {inputs}/text.txt: exists and is not a folder"),
    case("evaluate --features", "output in the way", EVAL_OK + " --visualize 2 --visualize-out {inputs}/blocked",
         "--visualize-out {inputs}/blocked/ranked.html: is a folder"),
    case("evaluate --features", "would overwrite data", EVAL_OK + " --json {inputs}/features.npz",
         "is the --features file; refusing to overwrite it"),
    case("evaluate --features", "corrupt file", FEATURES + " {inputs}/truncated.npz --json {inputs}/old.json",
         "{inputs}/truncated.npz: not a readable"),
    case("evaluate --features", "system error", EVAL_OK + " --json {inputs}/old.json",
         "{inputs}/old.json: no space left on device", Fault("write_text", ENOSPC, "old.json")),
    case("evaluate --features", "system error", EVAL_OK + " --json {out}/r.json", "{out}/r.json: permission denied",
         Fault("replace", EACCES, "r.json")),
    case("evaluate --features", "system error", EVAL_OK + " --json {out}/r.json", "{out}/r.json: permission denied",
         Fault("mkdtemp", EACCES, "r.json")),
    # drfm evaluate --run
    case("evaluate --run", "missing path", EVAL_RUN + " {inputs}/nowhere",
         "--run {inputs}/nowhere: no such run folder"),
    case("evaluate --run", "wrong file type", EVAL_RUN + " {inputs}/text.txt", "is a file, not a run folder"),
    case("evaluate --run", "wrong file type", EVAL_RUN + " {inputs}/folder", "{inputs}/folder: not a run folder",
         child=True),
    case("evaluate --run", "corrupt file", EVAL_RUN + " {inputs}/broken_run", "unreadable checkpoint"),
    case("evaluate --run", "bad number", EVAL_RUN + " {run} --seed -1", "argument --seed: must be at least 0"),
    case("evaluate --run", "bad number", EVAL_RUN + " {run} --trials -3", "argument --trials: must be at least 1"),
    case("evaluate --run", "output in the way", EVAL_RUN + " {run} --json {inputs}/folder", "is a folder"),
    case("evaluate --run", "output in the way", EVAL_RUN + " {run} --visualize 2 --visualize-out {inputs}/text.txt",
         "exists and is not a folder"),
    case("evaluate --run", "output in the way", EVAL_RUN + " {run} --visualize 2 --visualize-out {inputs}/blocked",
         "{inputs}/blocked/ranked.html: is a folder"),
    case("evaluate --run", "system error", EVAL_RUN + " {run}", "{run}/eval.json: no space left on device",
         Fault("write_text", ENOSPC, "eval.json")),
    # drfm search
    case("search", "missing path", "search --model {inputs}/nowhere --query {query} --gallery {gallery}",
         "{inputs}/nowhere: no such run folder"),
    case("search", "missing path", "search --model {run} --query {inputs}/nowhere.png --gallery {gallery}",
         "{inputs}/nowhere.png: image file does not exist"),
    case("search", "missing path", "search --model {run} --query {query} --gallery {inputs}/nowhere",
         "{inputs}/nowhere: gallery folder does not exist"),
    case("search", "missing path", "search --model {run} --query {query} --gallery {inputs}/folder", "holds no image"),
    case("search", "wrong file type", "search --model {run} --query {inputs}/text.txt --gallery {gallery}",
         "{inputs}/text.txt: not a readable image"),
    case("search", "wrong file type", "search --model {run} --query {inputs}/folder --gallery {gallery}",
         "a query must be an image file, not a folder"),
    case("search", "wrong file type", "search --model {run} --query {query} --gallery {inputs}/text.txt",
         "{inputs}/text.txt: is a file, not a gallery folder"),
    case("search", "wrong file type", "search --model {inputs}/text.txt --query {query} --gallery {gallery}",
         "unreadable checkpoint"),
    case("search", "wrong file type", SEARCH_INDEXED + " --out {out}/r.txt", "must be an .html file"),
    case("search", "wrong file type", SEARCH + " --index {out}/index.txt",
         "--index {out}/index.txt: a search index file must end in .npz"),
    case("search", "corrupt file", "search --model {inputs}/truncated.pt --query {query} --gallery {gallery}",
         "unreadable checkpoint"),
    case("search", "corrupt file", "search --model {run} --query {inputs}/notimage.png --gallery {gallery}",
         "{inputs}/notimage.png: not a readable image"),
    case("search", "corrupt file", "search --model {run} --query {inputs}/cut.png --gallery {gallery}",
         "{inputs}/cut.png: unreadable or truncated image"),
    case("search", "bad number", SEARCH_INDEXED + " --top 0", "argument --top: must be at least 1, got 0"),
    case("search", "bad number", SEARCH_INDEXED + " --top ten", "expected an integer, got 'ten'"),
    case("search", "bad number", SEARCH_INDEXED + " --batch-size -2", "argument --batch-size: must be at least 1"),
    case("search", "output in the way", SEARCH_INDEXED + " --out {inputs}/folder.html",
         "--out {inputs}/folder.html: is a folder"),
    case("search", "output in the way", SEARCH_INDEXED + " --out {inputs}/text.txt/r.html", "is a file, not a folder"),
    case("search", "output in the way", SEARCH_INDEXED + " --out {inputs}/png_blocked/r.html",
         "--out {inputs}/png_blocked/r.png: is a folder"),
    case("search", "output in the way", SEARCH + " --index {inputs}/folder.npz",
         "--index {inputs}/folder.npz: is a folder"),
    case("search", "output in the way", SEARCH + " --index {inputs}/text.txt/i.npz", "is a file, not a folder"),
    case("search", "would overwrite data", SEARCH + " --index {inputs}/features.npz",
         "is not a drfm search index; refusing to overwrite it"),
    case("search", "would overwrite data", SEARCH + " --index {inputs}/array.npy.npz",
         "is not a drfm search index; refusing to overwrite it"),
    case("search", "unavailable device", SEARCH_INDEXED + " --device cuda", "device 'cuda'"),
    case("search", "unavailable device", SEARCH_INDEXED + " --device cuda:7", "device 'cuda:7'", child=True),
    case("search", "unavailable device", SEARCH_INDEXED + " --device gpu", "device 'gpu': not a device"),
    case("search", "system error", SEARCH_INDEXED, "{out}/i.npz: no space left on device", Fault("savez", ENOSPC,
         "i.npz")),
    # drfm export
    case("export", "missing path", "export --model {inputs}/nowhere --format onnx --out {out}/m.onnx",
         "no such run folder"),
    case("export", "wrong file type", "export --model {inputs}/text.txt --format onnx --out {out}/m.onnx",
         "unreadable checkpoint"),
    case("export", "wrong file type", EXPORT + " --out {out}/m.pt --format tflite",
         "argument --format: invalid choice"),
    case("export", "corrupt file", "export --model {inputs}/truncated.pt --format torchscript --out {out}/m.pt",
         "{inputs}/truncated.pt: unreadable checkpoint"),
    case("export", "output in the way", EXPORT + " --out {inputs}/folder",
         "--out {inputs}/folder: is a folder", child=True),
    case("export", "output in the way", EXPORT + " --out {inputs}/text.txt/m.pt", "is a file, not a folder"),
    case("export", "would overwrite data", EXPORT + " --out {run}/checkpoint.pt", "refusing to overwrite it"),
    case("export", "unavailable device", EXPORT + " --out {out}/m.pt --device cuda", "device 'cuda'"),
    case("export", "unavailable device", EXPORT + " --out {out}/m.pt --device cuda:7", "device 'cuda:7'"),
    case("export", "unavailable device", EXPORT + " --out {out}/m.pt --device tpu", "device 'tpu'"),
    case("export", "system error", EXPORT + " --out {out}/m.pt", "{out}/m.pt: permission denied",
         Fault("mkdtemp", EACCES, "m.pt")),
    case("export", "system error", EXPORT + " --out {inputs}/old.pt", "{inputs}/old.pt: no space left on device",
         Fault("replace", ENOSPC, "old.pt")),
    # drfm bench cluster
    case("bench cluster", "bad number", BENCH + " 0", "argument --n: must be at least 1, got 0", child=True),
    case("bench cluster", "bad number", BENCH + " -5", "argument --n: must be at least 1"),
    case("bench cluster", "bad number", BENCH + " 1e3", "expected an integer, got '1e3'"),
    case("bench cluster", "bad number", BENCH + " 40 --dim 0", "argument --dim: must be at least 1"),
    case("bench cluster", "bad number", BENCH + " 40 --seed -1", "argument --seed: must be at least 0"),
    case("bench cluster", "bad number", BENCH + " 40 --k1 0", "argument --k1: must be at least 1"),
    case("bench cluster", "bad number", BENCH + " 40 --centers 0", "argument --centers: must be at least 1"),
    case("bench cluster", "bad number", BENCH + " 40 --min-samples 0", "argument --min-samples: must be at least 1"),
    case("bench cluster", "bad number", BENCH + " 40 --eps 1.5", "argument --eps: expected 0 < eps < 1"),
    case("bench cluster", "bad number", BENCH + " 40 --eps nan", "argument --eps: expected 0 < eps < 1"),
    case("bench cluster", "bad number", BENCH + " 40 --eps wide", "argument --eps: expected a number"),
    case("bench cluster", "output in the way", BENCH + " 40 --json {inputs}/folder",
         "--json {inputs}/folder: is a folder"),
    case("bench cluster", "output in the way", BENCH + " 40 --json {inputs}/text.txt/b.json",
         "is a file, not a folder"),
    case("bench cluster", "system error", BENCH + " 40 --json {inputs}/old.json", "{inputs}/old.json: no space left",
         Fault("write_text", ENOSPC, "old.json")),
    case("bench cluster", "system error", BENCH + " 40 --json {out}/b.json", "{out}/b.json: permission denied",
         Fault("mkdtemp", EACCES, "b.json")),
    # drfm demo (every row fails before the world is generated)
    case("demo", "bad number", "demo --out {out}/d --seed -1", "argument --seed: must be at least 0"),
    case("demo", "bad number", "demo --out {out}/d --people 1", "argument --people: must be at least 2"),
    case("demo", "bad number", "demo --out {out}/d --people lots", "expected an integer, got 'lots'"),
    case("demo", "wrong file type", "demo --out {out}/d --configs nope", "unknown configuration 'nope'"),
    case("demo", "wrong file type", "demo --out {out}/d --configs ,", "--configs ',': give at least one"),
    case("demo", "output in the way", "demo --out {inputs}/text.txt",
         "--out {inputs}/text.txt: exists and is not a folder",
         child=True),
    case("demo", "output in the way", "demo --out {inputs}/text.txt/d", "{inputs}/text.txt is a file, not a folder"),
    case("demo", "would overwrite data", "demo --out {inputs}/user_folder", "exists and is not a drfm demo folder"),
    # drfm prepare sr
    case("prepare sr", "missing path", "prepare sr --dataset mlr --root {inputs}/nowhere --cache {out}/c",
         "{inputs}/nowhere: dataset folder does not exist"),
    case("prepare sr", "missing path", SR + " --cache {out}/c --weights {inputs}/nowhere", "takes no weights"),
    case("prepare sr", "wrong file type", "prepare sr --dataset mlr --root {inputs}/folder --cache {out}/c",
         "manifest"),
    case("prepare sr", "wrong file type", "prepare sr --dataset nope --root {world} --cache {out}/c",
         "unknown dataset 'nope'"),
    case("prepare sr", "wrong file type", SR + " --cache {out}/c --views hr", "--views hr"),
    case("prepare sr", "wrong file type", SR + " --cache {out}/c --backend magic",
         "argument --backend: invalid choice"),
    case("prepare sr", "bad number", SR + " --cache {out}/c --factor 0", "argument --factor: must be at least 1"),
    case("prepare sr", "bad number", SR + " --cache {out}/c --batch-size 0",
         "argument --batch-size: must be at least 1"),
    case("prepare sr", "bad number", SR + " --cache {out}/c --seed -7", "argument --seed: must be at least 0"),
    case("prepare sr", "output in the way", SR + " --cache {inputs}/text.txt",
         "--cache {inputs}/text.txt: exists and is not a folder",
         child=True),
    case("prepare sr", "output in the way", SR + " --cache {inputs}/text.txt/c", "is a file, not a folder"),
    case("prepare sr", "unavailable device", SR + " --cache {out}/c --device cuda", "device 'cuda'"),
    case("prepare sr", "unavailable device", SR + " --cache {out}/c --device cuda:7", "device 'cuda:7'"),
    case("prepare sr", "unavailable device", SR + " --cache {out}/c --device quantum", "device 'quantum'"),
    case("prepare sr", "system error", SR + " --cache {out}/c --views slr", "no space left on device",
         Fault("png", ENOSPC, ".png")),
]


def count_cases() -> dict[str, Counter]:
    """{command: Counter of kinds} over CASES, for the report."""
    counts: dict[str, Counter] = {command: Counter() for command in COMMANDS}
    for row in CASES:
        counts[row.command][row.kind] += 1
    return counts


def _features_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"query_feats": rng.normal(size=(3, 4)), "query_pids": np.arange(3), "query_camids": np.zeros(3, int),
            "gallery_feats": rng.normal(size=(5, 4)), "gallery_pids": np.arange(5), "gallery_camids": np.ones(5, int)}


def make_inputs(folder: Path, run: Path) -> Path:
    """The hostile input files every row may read (and must leave untouched)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = _features_arrays(rng)
    (folder / "text.txt").write_text("hello\n")
    (folder / "folder").mkdir()
    (folder / "folder.npz").mkdir()
    (folder / "folder.html").mkdir()
    (folder / "blocked" / "ranked.html").mkdir(parents=True)
    (folder / "blocked" / "ranked.png").mkdir()
    (folder / "png_blocked" / "r.png").mkdir(parents=True)
    (folder / "user_folder").mkdir()
    (folder / "user_folder" / "thesis.tex").write_text("years of work\n")
    np.save(folder / "array.npy", np.zeros(3))
    shutil.copy(folder / "array.npy", folder / "array.npy.npz")
    (folder / "empty.npz").write_bytes(b"")
    np.savez(folder / "features.npz", **arrays)
    good = (folder / "features.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(good[: len(good) // 2])
    (folder / "garbage.npz").write_bytes(b"PK\x03\x04" + rng.bytes(300))
    np.savez(folder / "object.npz", **{**arrays, "query_pids": np.array([1, "a", None], dtype=object)})
    np.savez(folder / "nan.npz", **{**arrays, "query_feats": np.full((3, 4), np.nan)})
    np.savez(folder / "nokey.npz", **{k: v for k, v in arrays.items() if k != "query_pids"})
    np.savez(folder / "ragged.npz", **{**arrays, "gallery_pids": np.arange(3)})
    shutil.copy(folder / "features.npz", folder / "old.npz")
    (folder / "old.json").write_text('{"kept": true}\n')
    (folder / "old.pt").write_bytes(b"an older export\n")
    Image.new("RGB", (16, 32), (200, 10, 10)).save(folder / "image.png")
    (folder / "notimage.png").write_text("not a picture")
    (folder / "cut.png").write_bytes((folder / "image.png").read_bytes()[:60])
    with open(run / "checkpoint.pt", "rb") as source:
        (folder / "truncated.pt").write_bytes(source.read(1 << 20))
    (folder / "broken_run").mkdir()
    shutil.copy(run / "config.yaml", folder / "broken_run" / "config.yaml")
    (folder / "broken_run" / "checkpoint.pt").write_bytes(b"\x80\x04 no pickle here")
    return folder


@pytest.fixture(scope="module")
def paths(tiny, tmp_path_factory) -> dict[str, Path]:
    """Placeholder -> path, shared by the rows of this module ({out} is set per row)."""
    world, run = tiny
    inputs = make_inputs(tmp_path_factory.mktemp("hostile") / "inputs", run)
    query = sorted((world / "images" / "query").rglob("*.png"))[0]
    return {"run": run, "world": world, "query": query, "gallery": world / "images" / "gallery", "inputs": inputs}


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under `folder`: folders by name, files by size, mtime and (small ones) content."""
    entries: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            entries[str(path.relative_to(folder))] = "folder"
            continue
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size < 1 << 20 else None
        entries[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns, digest)
    return entries


def leftovers(*folders: Path) -> list[Path]:
    """Temporary files or folders of atomic_path (`.NAME.XXXX.tmp`) under `folders`."""
    return [p for folder in folders for p in folder.rglob(".*.tmp")]


def inject(fault: Fault, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `fault.call` raise OSError(fault.code) for files named like `fault.name`."""
    def error(path: object = None) -> OSError:
        return OSError(fault.code, os.strerror(fault.code), None if path is None else str(path))

    def hit(path: object) -> bool:
        return Path(str(getattr(path, "name", path))).name.endswith(fault.name)

    if fault.call == "savez":
        real_savez = np.savez

        def savez(file, *args, **kwargs):
            if hit(file):
                raise error()  # a write through a file handle names no file
            return real_savez(file, *args, **kwargs)

        monkeypatch.setattr(np, "savez", savez)
    elif fault.call == "write_text":
        real_write_text = pathlib.Path.write_text

        def write_text(self, *args, **kwargs):
            if hit(self):
                raise error(self)
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    elif fault.call == "mkdtemp":
        real_mkdtemp = tempfile.mkdtemp

        def mkdtemp(suffix=None, prefix=None, dir=None):
            if prefix and prefix.rstrip(".").endswith(fault.name):
                raise error(Path(dir) / f"{prefix}xyz{suffix}")
            return real_mkdtemp(suffix, prefix, dir)

        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    elif fault.call == "replace":
        real_replace = os.replace

        def replace(src, dst, **kwargs):
            if hit(dst):
                raise OSError(fault.code, os.strerror(fault.code), str(src), None, str(dst))
            return real_replace(src, dst, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
    elif fault.call == "png":
        real_save = Image.Image.save

        def save(self, fp, *args, **kwargs):
            if hit(fp):
                raise error()
            return real_save(self, fp, *args, **kwargs)

        monkeypatch.setattr(Image.Image, "save", save)
    else:
        raise AssertionError(f"unknown fault {fault.call}")


def formatted(row: Case, paths: dict[str, Path], out: Path) -> tuple[list[str], str]:
    values = {**paths, "out": out}
    return [arg.format(**values) for arg in row.argv], row.words.format(**values)


def check_one_line(err: str, words: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("drfm: error: "), lines[0]
    assert "Traceback" not in err
    assert words in lines[0], f"{words!r} not in {lines[0]!r}"


def check_nothing_written_or_lost(before: dict, paths: dict[str, Path], out: Path) -> None:
    assert snapshot(paths["inputs"]) == before["inputs"], "an input or an existing output changed"
    assert snapshot(paths["run"]) == before["run"], "the run folder changed"
    assert not [p for p in out.rglob("*") if not p.is_dir()], "a file was written to the output folder"
    assert not leftovers(paths["inputs"], paths["run"], out), "a temporary file or folder was left"


@pytest.mark.parametrize("row", CASES, ids=[f"{c.command}|{c.kind}|{' '.join(c.argv[-2:])}" for c in CASES])
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(row, paths, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    argv, words = formatted(row, paths, out)
    before = {"inputs": snapshot(paths["inputs"]), "run": snapshot(paths["run"])}
    monkeypatch.setenv("XDG_CACHE_HOME", str(out / "cache"))
    if row.fault is not None:
        inject(row.fault, monkeypatch)
    capsys.readouterr()
    code = main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2, err
    check_one_line(err, words)
    check_nothing_written_or_lost(before, paths, out)


CHILD_CASES = [row for row in CASES if row.child]


@pytest.mark.parametrize("row", CHILD_CASES, ids=[row.command for row in CHILD_CASES])
def test_hostile_input_in_a_child_process(row, paths, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    argv, words = formatted(row, paths, out)
    done = subprocess.run([sys.executable, "-m", "drfm", *argv], capture_output=True, text=True, cwd=out,
                          env={**os.environ, "XDG_CACHE_HOME": str(out / "cache")}, timeout=300)
    assert done.returncode == 2, done.stderr
    check_one_line(done.stderr, words)
    assert not [p for p in out.rglob("*") if not p.is_dir()]


def test_the_table_tries_every_command_and_every_kind():
    counts = count_cases()
    assert all(counts[command] for command in COMMANDS)
    assert {row.kind for row in CASES} == set(KINDS)
    assert {row.command for row in CHILD_CASES} == set(COMMANDS)
    assert all(row.command in COMMANDS and row.kind in KINDS for row in CASES)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_real_read_only_output_folder(paths, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        features = str(paths["inputs"] / "features.npz")
        for argv in (["evaluate", "--features", features, "--json", str(locked / "r.json")],
                     ["bench", "cluster", "--n", "40", "--dim", "8", "--no-floor", "--json", str(locked / "b.json")]):
            capsys.readouterr()
            assert main(argv) == 2
            check_one_line(capsys.readouterr().err, str(locked))
            assert not list(locked.iterdir())
    finally:
        locked.chmod(0o755)


def test_extract_then_evaluate_features_equals_evaluate_run(tiny, tmp_path, capsys):
    """`drfm extract` dispatches (its --run option no longer hides the command) and its file gives
    exactly the numbers of `drfm evaluate --run`."""
    run = tmp_path / "run"
    shutil.copytree(tiny[1], run)
    features = tmp_path / "f.npz"
    assert main(["extract", "--run", str(run), "--out", str(features), "--quiet"]) == 0
    assert re.search(r"features written: .*f\.npz", capsys.readouterr().out)
    assert main(["evaluate", "--features", str(features), "--json", str(tmp_path / "a.json")]) == 0
    assert main(["evaluate", "--run", str(run), "--quiet", "--json", str(tmp_path / "b.json")]) == 0
    from_file = json.loads((tmp_path / "a.json").read_text())
    from_run = json.loads((tmp_path / "b.json").read_text())
    assert from_file.pop("features") == str(features)
    assert {key: from_run[key] for key in from_file} == from_file


def test_a_gpu_index_that_does_not_exist_is_named(paths, tmp_path, monkeypatch, capsys):
    import torch

    from drfm.engine.extract import resolve_device
    from drfm.errors import DrfmError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DrfmError, match=r"device 'cuda:7': no such GPU \(1 CUDA device\(s\): cuda:0 to cuda:0\)"):
        resolve_device("cuda:7")
    capsys.readouterr()
    argv = ["export", "--model", str(paths["run"]), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
            "--device", "cuda:7"]
    assert main(argv) == 2
    check_one_line(capsys.readouterr().err, "device 'cuda:7': no such GPU")
    assert not list(tmp_path.iterdir())


def test_atomic_path_leaves_nothing_behind_and_never_half_replaces(tmp_path, monkeypatch):
    from drfm.utils.io import atomic_path

    final = tmp_path / "result.json"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert final.read_text() == "old" and not leftovers(tmp_path)

    folder = tmp_path / "folder"
    (folder / "keep").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as caught, atomic_path(folder) as tmp:
        tmp.write_text("a file may not replace a folder")
    assert caught.value.filename == str(folder) and (folder / "keep").is_dir() and not leftovers(tmp_path)

    real_replace = os.replace

    def refuse_second(src, dst):
        if Path(src).name == "folder" and Path(dst) == folder:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_second)
    with pytest.raises(OSError) as caught, atomic_path(folder) as tmp:
        (tmp / "new").mkdir(parents=True)
    monkeypatch.undo()
    assert caught.value.filename == str(folder) and (folder / "keep").is_dir() and not (folder / "new").exists()
    assert not leftovers(tmp_path)

    with pytest.raises(NotADirectoryError) as caught, atomic_path(final / "under.json") as tmp:
        tmp.write_text("x")
    assert caught.value.filename == str(final / "under.json") and final.read_text() == "old"


def test_os_errors_become_one_line_naming_the_path(capsys):
    from drfm.cli import os_error_message

    assert os_error_message(OSError(errno.ENOSPC, "No space left on device", "/d/f.npz")) == \
        "/d/f.npz: no space left on device"
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/ro/x")) == "/ro/x: permission denied"
    assert os_error_message(OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")) == \
        "/a -> /b: Invalid cross-device link"
    assert os_error_message(OSError("socket\nclosed")) == "socket closed"


def test_library_errors_name_parameters_and_the_command_line_shows_flags():
    from drfm.cli import flag_of
    from drfm.errors import OptionError, option

    error = OptionError(f"{option('lr_camera')} 5: give either {option('lr_camera')} or {option('lr_height_threshold')}")
    assert str(error) == "lr_camera 5: give either lr_camera or lr_height_threshold"
    assert error.render(flag_of) == "--lr-camera 5: give either --lr-camera or --lr-height-threshold"
    assert [flag_of(name) for name in ("index_file", "num_queries", "run_dir", "batch_size")] == [
        "--index", "--visualize", "--out", "--batch-size"]
