"""A CAVIAR-shaped subset of TownCentre: 50 people x 20 frames (symbolic links), for MLR-TC25.

    python benchmarks/towncentre_subset.py --root ../shared/datasets/TownCentre --out towncentre-25

Takes the 50 lowest person ids with at least 40 frames and, of each, 20 frames evenly spaced
over its track (frame index floor(k * n / 20), k = 0..19, of its n frames sorted by frame number),
so that `drfm prepare mlr --dataset towncentre` (seeded half split of the people, a seeded half of
each person's images down-sampled) gives 25 training people with 10 HR + 10 LR images each: the
shape of the CAVIAR protocol (25 training people, 10 HR + 10 LR images).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

NAME = re.compile(r"^(\d+)_(\d+)\.jpg$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the TownCentre folder (PID_FRAME.jpg)")
    parser.add_argument("--out", required=True, help="new folder for the links")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    root, out = Path(args.root).resolve(), Path(args.out)
    if out.exists():
        parser.error(f"--out {out}: exists; give a new folder")
    if not root.is_dir():
        parser.error(f"--root {root}: not a folder")
    tracks: dict[int, list[tuple[int, Path]]] = defaultdict(list)
    for path in root.iterdir():
        match = NAME.match(path.name)
        if match:
            tracks[int(match.group(1))].append((int(match.group(2)), path))
    people = sorted(pid for pid, frames in tracks.items() if len(frames) >= 2 * args.frames)[: args.people]
    out.mkdir(parents=True)
    for pid in people:
        frames = sorted(tracks[pid])
        for k in range(args.frames):
            source = frames[k * len(frames) // args.frames][1]
            (out / source.name).symlink_to(source)
    print(f"{len(people)} people x {args.frames} frames linked into {out}")


if __name__ == "__main__":
    main()
