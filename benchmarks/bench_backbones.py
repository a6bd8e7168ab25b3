"""CPU speed of the backbones: images/s for forward (eval, no grad) and forward+backward+Adam step
(train mode), batch 32, at 256x128 and 128x64, with the module's weights in NCHW or channels_last
memory format (build_backbone returns channels_last).

Usage: python benchmarks/bench_backbones.py [--threads 2] [--batch 32] [--repeats 5]
       [--backbones resnet50 resnet18 efficientnet_lite0] [--out benchmarks/results/backbones.json]
Prints one line per measurement and writes all of them, with the environment, as JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from drfm.models.backbones import BACKBONES, build_backbone
from drfm.utils.io import write_json_atomic
from drfm.utils.seeding import environment_info

SIZES = ((256, 128), (128, 64))


def images_per_second(model: torch.nn.Module, batch: torch.Tensor, train: bool,
                      repeats: int) -> float:
    """Best images/s over `repeats` timed steps after one warm-up step (the fastest step is the
    one least disturbed by other processes on a shared machine)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if train else None
    model.train(train)

    def step() -> None:
        if optimizer is None:
            with torch.no_grad():
                model(batch)
            return
        optimizer.zero_grad(set_to_none=True)
        model(batch).mean().backward()
        optimizer.step()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch.shape[0] / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backbones.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for name in args.backbones:
        for memory_format in ("channels_last", "nchw"):
            model, channels = build_backbone(name, pretrained=False, last_stride=1)
            if memory_format == "nchw":
                model = model.to(memory_format=torch.contiguous_format)
            for height, width in SIZES:
                batch = torch.randn(args.batch, 3, height, width)
                row = {"backbone": name, "channels": channels, "memory_format": memory_format,
                       "input": f"{height}x{width}", "batch": args.batch,
                       "forward_img_s": round(images_per_second(model, batch, False, args.repeats), 1),
                       "train_img_s": round(images_per_second(model, batch, True, args.repeats), 1)}
                results.append(row)
                print(f"{name:>18} {memory_format:>13} {height}x{width}: forward "
                      f"{row['forward_img_s']:7.1f} img/s, forward+backward+Adam "
                      f"{row['train_img_s']:6.1f} img/s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, {"threads": args.threads, "repeats": args.repeats,
                                 "environment": environment_info(), "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
