"""A copy of a built MLR folder whose LR images look as if a second camera took them.

    python benchmarks/camera_shift.py --root mlr-ilids --out mlr-ilids-cam

MLR-iLIDS, MLR-3DPeS and MLR-TC25 down-sample a seeded half of each person's images of the same
cameras, so their LR images share the HR images' colours. In CAVIAR (the held-out protocol's
shape) the LR images come from another camera, with its own colour response. This script keeps
every HR image and the manifest as they are and re-colours each LR image (training and query)
with one fixed camera response: per channel, out = 255 * gain * (in / 255) ** gamma, clipped to
[0, 255], with gains (R, G, B) = (1.15, 1.0, 0.8) (a warm cast) and gamma 1.3 (darker mid-tones).
A labelling that relies on colour must then survive a colour gap that sets HR apart from LR.

`--desaturate S` (0 <= S <= 1) first mixes the channels, value = (1 - S) * value + S * (the
pixel's mean of R, G, B): a washed-out camera. No per-channel mapping undoes a mix of channels,
so this tests what `labels.color_calibration` (a per-channel brightness transfer) cannot fix:

    python benchmarks/camera_shift.py --root mlr-ilids --out mlr-ilids-grey --desaturate 0.5
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from drfm.utils.io import atomic_path

GAINS = (1.15, 1.0, 0.8)
GAMMA = 1.3


def camera_response(image: Image.Image, gains: tuple[float, float, float] = GAINS, gamma: float = GAMMA,
                    desaturate: float = 0.0) -> Image.Image:
    """The RGB `image` as the second camera renders it: each value mixed with the pixel's channel
    mean by `desaturate`, then 255 * gain * (value / 255) ** gamma per channel."""
    values = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    values = (1.0 - desaturate) * values + desaturate * values.mean(axis=2, keepdims=True)
    shifted = 255.0 * np.asarray(gains) * values ** gamma
    return Image.fromarray(np.clip(np.rint(shifted), 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="a folder built by `drfm prepare mlr` (manifest.json)")
    parser.add_argument("--out", required=True, help="new folder for the copy")
    parser.add_argument("--desaturate", type=float, default=0.0, metavar="S",
                        help="mix each channel with the pixel's channel mean by S in [0, 1] first (default 0)")
    args = parser.parse_args()
    root, out = Path(args.root), Path(args.out)
    if not 0.0 <= args.desaturate <= 1.0:
        parser.error(f"--desaturate {args.desaturate}: expected a number in [0, 1]")
    if out.exists():
        parser.error(f"--out {out}: exists; give a new folder")
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        parser.error(f"--root {root}: no manifest.json (build it with `drfm prepare mlr`)")
    manifest = json.loads(manifest_path.read_text())
    lr_entries = [entry for entry in manifest["entries"] if entry["resolution"] == "LR"]
    with atomic_path(out) as partial:  # nothing at OUT unless every image is written
        shutil.copytree(root, partial)
        for entry in lr_entries:
            path = partial / entry["path"]
            with Image.open(path) as image:
                shifted = camera_response(image, desaturate=args.desaturate)
            shifted.save(path)
    print(f"{out}: {len(lr_entries)} LR images re-coloured (gains {GAINS}, gamma {GAMMA}, desaturate "
          f"{args.desaturate}); HR images unchanged")


if __name__ == "__main__":
    main()
