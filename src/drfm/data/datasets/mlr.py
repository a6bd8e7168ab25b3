"""A built cross-resolution dataset (MLR-*, CAVIAR copy, user folder): `OUT/manifest.json` + `OUT/images/`.

The manifest format ("drfm-mlr/1") is written by `drfm.data.mlr.build_mlr` and by the demo world:
top-level provenance (dataset, source_root, seed, tool_version, lr_rule (build_mlr only),
lr_cameras, scale_factors, interpolation, lr_height_threshold, counts) and one entry per image with
its `path` relative to OUT, `pid`, `camid` (-1 unknown), `split`, down-sampling factor `r`,
`resolution` ("LR" | "HR"), width, height. Both writers build it with the helpers here:
`manifest_entry`, `entry_order` (the order of the entries), `manifest_counts` and `write_manifest`.

The reader returns splits named "mlr-<dataset>" whose records have absolute paths (OUT / entry
path), `lr_cameras` from the manifest, and `meta` = the manifest without its entries plus
`meta["resolution"]`: {record path: "LR" | "HR"}. Which images are LR is each entry's
`resolution` (DatasetSplits.low_resolution_mask reads `meta["resolution"]`), so builds whose LR
images are not one camera's (per-person half, height threshold) read back right.
Train must not be empty; query and gallery are either both empty (a build of unlabeled data) or
both non-empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import drfm
from drfm.data.downsampling import INTERPOLATION
from drfm.data.records import UNKNOWN_PID, DatasetSplits, ImageRecord
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "drfm-mlr/1"
SPLITS = ("train", "query", "gallery")
RESOLUTIONS = ("LR", "HR")
ENTRY_FIELDS = ("path", "pid", "camid", "split", "resolution")


def manifest_entry(
    source: str | None, path: str, pid: int, camid: int, r: int, split: str, low_resolution: bool
) -> dict:
    """One manifest entry, without `width` and `height` (pixels; the writer adds them once the image
    is saved). `source`: the source file relative to the source root (None for a generated image);
    `path`: the output file relative to OUT; `r`: the down-sampling factor (1: kept as is), whose
    `interpolation` is drfm.data.downsampling's INTERPOLATION when r > 1, else None."""
    return {
        "source": source,
        "path": path,
        "pid": pid,
        "camid": camid,
        "r": r,
        "interpolation": INTERPOLATION if r > 1 else None,
        "split": split,
        "resolution": "LR" if low_resolution else "HR",
    }


def entry_order(entry: dict) -> tuple[int, int, int, str]:
    """Sort key of manifest entries: split (train, query, gallery), pid, camid, then the source file
    (the output path for a generated image, whose source is None)."""
    tie = entry["source"] if entry["source"] is not None else entry["path"]
    return SPLITS.index(entry["split"]), entry["pid"], entry["camid"], tie


def manifest_counts(entries: Sequence[dict]) -> dict[str, dict[str, int]]:
    """{split: {"images": number of entries, "ids": number of distinct known pids (UNKNOWN_PID not
    counted)}} for every split."""
    return {
        split: {
            "images": sum(e["split"] == split for e in entries),
            "ids": len({e["pid"] for e in entries if e["split"] == split and e["pid"] != UNKNOWN_PID}),
        }
        for split in SPLITS
    }


def write_manifest(
    folder: Path,
    entries: list[dict],
    *,
    dataset: str,
    source_root: str | None,
    seed: int,
    lr_cameras: Sequence[int],
    scale_factors: Sequence[int],
    interpolation: str | None,
    lr_height_threshold: int | None,
    lr_rule: str | None = None,
) -> dict:
    """Write `folder/manifest.json` (format drfm-mlr/1, sorted keys, 2-space indent, no timestamp)
    and return the manifest: the provenance given, `tool_version`, `counts` (manifest_counts) and
    `entries` as given (already in entry_order). `lr_rule` is recorded only when given."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "source_root": source_root,
        "seed": seed,
        "tool_version": drfm.__version__,
        "lr_cameras": list(lr_cameras),
        "scale_factors": list(scale_factors),
        "interpolation": interpolation,
        "lr_height_threshold": lr_height_threshold,
        "counts": manifest_counts(entries),
        "entries": entries,
    }
    if lr_rule is not None:
        manifest["lr_rule"] = lr_rule
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_manifest(out: Path) -> dict:
    """The parsed `out/manifest.json`; DrfmError if it is missing, not JSON or not format drfm-mlr/1."""
    path = out / MANIFEST_NAME
    if not path.is_file():
        raise DrfmError(f"{path}: MLR manifest is missing (not a built dataset folder)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DrfmError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DrfmError(f"{path}: not a '{MANIFEST_FORMAT}' manifest")
    if not isinstance(manifest.get("entries"), list) or not isinstance(manifest.get("lr_cameras"), list):
        raise DrfmError(f"{path}: manifest needs an 'entries' list and an 'lr_cameras' list")
    return manifest


def _entry_record(out: Path, index: int, entry: object) -> ImageRecord:
    """The record of manifest entry number `index`; DrfmError if it is malformed or its image is missing."""
    where = f"{out / MANIFEST_NAME}: entry {index}"
    if not isinstance(entry, dict) or any(key not in entry for key in ENTRY_FIELDS):
        raise DrfmError(f"{where} needs the fields {', '.join(ENTRY_FIELDS)}")
    relative = PurePosixPath(str(entry["path"]))
    if relative.is_absolute() or ".." in relative.parts:
        raise DrfmError(f"{where}: path '{relative}' must be relative to the dataset folder")
    if entry["split"] not in SPLITS or entry["resolution"] not in RESOLUTIONS:
        raise DrfmError(f"{where}: split must be one of {SPLITS} and resolution one of {RESOLUTIONS}")
    if not isinstance(entry["pid"], int) or not isinstance(entry["camid"], int):
        raise DrfmError(f"{where}: pid and camid must be integers")
    path = out.joinpath(*relative.parts)
    if not path.is_file():
        raise DrfmError(f"{path}: image listed in {out / MANIFEST_NAME} is missing")
    return ImageRecord(path=path, pid=entry["pid"], camid=entry["camid"])


@register_dataset("mlr")
def read_mlr(root: Path, seed: int = 0) -> DatasetSplits:
    """Read a built dataset folder back into splits (`seed` is unused: the build fixed everything)."""
    manifest = load_manifest(root)
    by_split: dict[str, list[ImageRecord]] = {split: [] for split in SPLITS}
    resolution: dict[Path, str] = {}
    for index, entry in enumerate(manifest["entries"]):
        record = _entry_record(root, index, entry)
        by_split[entry["split"]].append(record)
        resolution[record.path] = entry["resolution"]
    meta = {key: value for key, value in manifest.items() if key != "entries"}
    meta["resolution"] = resolution
    splits = DatasetSplits(
        name=f"mlr-{manifest['dataset']}" if isinstance(manifest.get("dataset"), str) else "mlr",
        root=root,
        train=by_split["train"],
        query=by_split["query"],
        gallery=by_split["gallery"],
        lr_cameras=tuple(int(c) for c in manifest["lr_cameras"]),
        meta=meta,
    )
    splits.check_not_empty(("train", "query", "gallery") if splits.query or splits.gallery else ("train",))
    return splits
