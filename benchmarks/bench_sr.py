"""Seconds per image of each available SR backend (x4) on the CPU; print and write JSON.

Inputs are random RGB images of each --sizes entry (width x height; default 48x128, VIPeR's size,
-> 192x512, and 12x32, a VIPeR image down-sampled x4). Backends whose optional package or weights
are missing are reported as skipped. Without local Swin2SR weights (--swin2sr-weights DIR) and
with `transformers` installed, Swin2SR is timed with the classical-x4 architecture and random
weights: the speed is that of the real model, the output is meaningless.

    PYTHONPATH=src python benchmarks/bench_sr.py --threads 2 --json bench_sr.json
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from drfm.data.sr_backends import SRBackend, Swin2SRBackend, get_sr_backend, sr_backend_names
from drfm.errors import DrfmError
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info


def random_init_swin2sr() -> SRBackend:
    """Swin2SR with the architecture of caidas/swin2SR-classical-sr-x4-64 and random weights."""
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    config = Swin2SRConfig(embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8, image_size=64,
                           mlp_ratio=2.0, upscale=4, img_range=1.0, upsampler="pixelshuffle",
                           resi_connection="1conv")
    model = Swin2SRForImageSuperResolution(config)
    return Swin2SRBackend(model, Swin2SRImageProcessor(pad_size=8), "random-init", "cpu")


def backends(swin2sr_weights: str | None) -> tuple[dict[str, SRBackend], dict[str, str]]:
    """({label: backend} of every backend that can run here, {name: why skipped})."""
    ready: dict[str, SRBackend] = {}
    skipped: dict[str, str] = {}
    for name in sr_backend_names():
        try:
            ready[name] = get_sr_backend(name, weights=swin2sr_weights if name == "swin2sr" else None)
        except DrfmError as exc:
            skipped[name] = str(exc)
    if "swin2sr" in skipped:
        try:
            ready["swin2sr (random init, timing only)"] = random_init_swin2sr()
        except ImportError:
            pass
    return ready, skipped


def time_backend(backend: SRBackend, size: tuple[int, int], batch: int, repeats: int, budget_s: float) -> dict:
    """Median seconds per image over up to `repeats` calls on `batch` random images of `size` (w, h)."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(batch)]
    backend.upscale(images[:1])  # warm-up
    per_image = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = backend.upscale(images)
        per_image.append((time.perf_counter() - start) / batch)
        if sum(per_image) * batch > budget_s:
            break
    assert out[0].size == (4 * size[0], 4 * size[1])
    return {"seconds_per_image": statistics.median(per_image), "runs": len(per_image), "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="48x128,12x32", help="comma-separated WIDTHxHEIGHT input sizes")
    parser.add_argument("--batch", type=int, default=4, help="images per upscale call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend and size (at most)")
    parser.add_argument("--budget", type=float, default=60.0, help="stop repeating after this many seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch / ncnn CPU threads")
    parser.add_argument("--swin2sr-weights", default=None, help="local Swin2SR weights folder")
    parser.add_argument("--json", help="write the timings to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]

    ready, skipped = backends(args.swin2sr_weights)
    results: dict[str, dict] = {}
    for label, backend in ready.items():
        for width, height in sizes:
            row = time_backend(backend, (width, height), args.batch, args.repeats, args.budget)
            results.setdefault(label, {"version": backend.version})[f"{width}x{height}"] = row
            print(f"{label:36s} {width:4d}x{height:<4d} -> {4 * width}x{4 * height}: "
                  f"{row['seconds_per_image']:8.4f} s/image ({row['runs']} runs of {row['batch']})")
    for name, reason in skipped.items():
        print(f"{name:36s} skipped: {reason}")
    if args.json:
        write_json_atomic(args.json, {"threads": args.threads, "results": results, "skipped": skipped,
                                      "environment": environment_info()})


if __name__ == "__main__":
    main()
