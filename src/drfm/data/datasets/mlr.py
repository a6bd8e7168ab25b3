"""A built cross-resolution dataset (MLR-*, CAVIAR copy, user folder): `OUT/manifest.json` + `OUT/images/`.

The manifest format ("drfm-mlr/1") is written by `drfm.data.mlr.build_mlr` and by the demo world:
top-level provenance (dataset, source_root, seed, tool_version, lr_rule (build_mlr only),
lr_cameras, scale_factors, interpolation, lr_height_threshold, counts) and one entry per image with
its `path` relative to OUT, `pid`, `camid` (-1 unknown), `split`, down-sampling factor `r`,
`resolution` ("LR" | "HR"), width, height.

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
from pathlib import Path, PurePosixPath

from drfm.data.records import DatasetSplits, ImageRecord
from drfm.data.registry import register_dataset
from drfm.errors import DrfmError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "drfm-mlr/1"
SPLITS = ("train", "query", "gallery")
RESOLUTIONS = ("LR", "HR")
ENTRY_FIELDS = ("path", "pid", "camid", "split", "resolution")


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
