"""Colour jitter speed, before (hand-written YIQ jitter) and after (kornia's ColorJitter), interleaved.

python bench/jitter_speed.py [--rounds 15] [--before ed643fd]

Times one batch of 64 x 3 x 128 x 128 RGB floats in [0, 1] (jitter 0.4, hue 0.1) on the CPU: the old
misseg.data.augment.color_jitter read from git at --before, the current one (kornia), and the worker path's
torchvision v2 ColorJitter called once per image (what the DataLoader workers do, summed over the batch).
The implementations take turns in every round, so a load spike on a shared machine hits all of them;
the median and the min-max spread over the rounds are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
import types
from pathlib import Path

import torch
from torchvision.transforms import v2

from misseg.data.augment import color_jitter


def load_before(commit: str) -> types.ModuleType:
    repo = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:misseg/data/augment.py"], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    module = types.ModuleType("augment_before")
    exec(compile(src, f"{commit}:misseg/data/augment.py", "exec"), module.__dict__)
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--before", default="ed643fd")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    before = load_before(args.before)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    worker = v2.ColorJitter(0.4, 0.4, 0.4, 0.1)
    impls = {
        f"before: hand-written YIQ jitter ({args.before})": lambda: before.color_jitter(x, 0.4, 0.4, 0.4, 0.1),
        "after: kornia ColorJitter (misseg.data.augment.color_jitter)": lambda: color_jitter(x, 0.4, 0.4, 0.4, 0.1),
        "worker path: torchvision v2 ColorJitter per image": lambda: [worker(im) for im in x],
    }
    for f in impls.values():  # warm-up (kornia's first call builds its samplers)
        f()
    times: dict[str, list[float]] = {k: [] for k in impls}
    for r in range(args.rounds):
        names = list(impls) if r % 2 == 0 else list(reversed(impls))  # alternate who goes first
        for name in names:
            t = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - t)
    load = os.getloadavg()[0]
    print(f"batch {args.batch} x 3 x {args.size} x {args.size}, {args.rounds} interleaved rounds, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s), 1-min load {load:.1f}\n")  # fmt: skip
    print("| implementation | median ms | min - max ms |\n|---|---|---|")
    for name, ts in times.items():
        ms = [1e3 * t for t in ts]
        print(f"| {name} | {statistics.median(ms):.0f} | {min(ms):.0f} - {max(ms):.0f} |")


if __name__ == "__main__":
    main()
