"""Evaluation-metric throughput and peak memory: misseg's streaming confusion vs keep-all-pixels references.

Each measurement runs in a fresh process (`python -m misseg.bench.metric IMPL BATCHES DEVICE`) so peak
memory is that implementation's alone: Linux's peak RSS (VmHWM) is reset after the inputs are built.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from misseg.bench.naive import NaiveConfusion
from misseg.metrics.segmentation import HungarianSegmentationMetric

NUM_CLASSES = 27  # COCO-Stuff-27, K = number of classes
BATCH = (64, 256, 256)  # 4.19M pixels per update


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def iic_votes(pred: np.ndarray, target: np.ndarray, num_pred: int, num_classes: int) -> np.ndarray:
    """IIC's _hungarian_match vote count: one pass over all pixels per (cluster, class) pair."""
    votes = np.zeros((num_pred, num_classes), np.int64)
    for c1 in range(num_pred):
        for c2 in range(num_classes):
            votes[c1, c2] = int(((pred == c1) * (target == c2)).sum())
    return votes


def run_one(impl: str, batches: int, device: str) -> dict:
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, NUM_CLASSES, BATCH, generator=g).to(dev)
    target = torch.randint(0, NUM_CLASSES, BATCH, generator=g)
    target[torch.rand(BATCH, generator=g) < 0.1] = 255  # ~10% ignore, as in COCO-Stuff
    target = target.to(dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_mib = _rss_mib("VmRSS")
    exact = _reset_peak_rss()
    t = time.perf_counter()
    if impl == "misseg":
        metric = HungarianSegmentationMetric(NUM_CLASSES, NUM_CLASSES).to(dev)
        for _ in range(batches):
            metric.update(pred, target)
        out = metric.compute()
    elif impl == "numpy":
        ref = NaiveConfusion(NUM_CLASSES, NUM_CLASSES)
        for _ in range(batches):
            ref.update(pred, target)
        out = ref.compute()
    elif impl == "iic":
        flat_p = np.concatenate([pred.cpu().numpy().reshape(-1) for _ in range(batches)])
        flat_t = np.concatenate([target.cpu().numpy().reshape(-1) for _ in range(batches)])
        keep = flat_t != 255
        iic_votes(flat_p[keep], flat_t[keep], NUM_CLASSES, NUM_CLASSES)
        out = {}
    else:
        raise ValueError(f"impl={impl!r}: use misseg, numpy or iic")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    pixels = batches * int(np.prod(BATCH))
    peak = _rss_mib("VmHWM") - base_mib if exact else float("nan")
    res = {"impl": impl, "device": device, "pixels": pixels, "seconds": seconds, "pixels_per_s": pixels / seconds,
           "host_peak_extra_mib": peak, "pa": out.get("pa")}  # fmt: skip
    if dev.type == "cuda":
        res["device_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return res


def measure(impl: str, batches: int, device: str) -> dict:
    """run_one in a fresh interpreter, for an uncontaminated peak memory."""
    proc = subprocess.run(
        [sys.executable, "-m", "misseg.bench.metric", impl, str(batches), device],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"metric benchmark {impl} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(run_one(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
