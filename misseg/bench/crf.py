"""Dense-CRF throughput: one batch refined in this process vs spread over worker processes (`crf_workers`).

Why it is measured: pydensecrf2 holds the GIL, so the CRF target of a training step
(`model.objective.crf_target_weight`) runs one image after another; at batch 64 that is about a second, more than
a GPU's step. The images are photos when a folder dataset is given (the lattice, and so the cost, grows with the
colours an image holds: a flat synthetic scene is several times cheaper), with a smooth random prediction (a
network's output is smooth at stride 4); else a piecewise-constant scene with a noisy prediction of its blocks.
Pooled and serial outputs are checked to be equal.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.nn import functional as F

from misseg.bench.train_step import interleaved


def scene(batch: int, side: int, K: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 3, side, side) in [0, 1], probs (B, K, side, side)): K-colour blocks, a noisy prediction of them."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, K, (batch, 4, 4), generator=g)
    truth = cells.repeat_interleave(math.ceil(side / 4), 1).repeat_interleave(math.ceil(side / 4), 2)[:, :side, :side]
    colours = torch.rand(K, 3, generator=g)
    images = colours[truth].permute(0, 3, 1, 2)
    logits = 2 * F.one_hot(truth, K).permute(0, 3, 1, 2) + 1.6 * torch.randn(batch, K, side, side, generator=g)
    return images, logits.softmax(1)


def photo_files(root: Path) -> list[Path]:
    """ROOT/images' JPEG and PNG files, sorted (empty when there are none)."""
    return sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def photos(root: Path, batch: int, side: int, K: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch` images of ROOT/images (sorted), shorter side resized to `side` and centre-cropped, with a
    smooth random prediction (logits drawn at 1/8 of the side and upsampled bilinearly)."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    files = photo_files(root)[:batch]
    files = (files * math.ceil(batch / len(files)))[:batch]  # a small folder repeats its images
    images = torch.stack([
        TF.center_crop(TF.resize(TF.pil_to_tensor(Image.open(f).convert("RGB")), side, antialias=True), side)
        for f in files
    ]).float() / 255  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(batch, K, max(side // 8, 1), max(side // 8, 1), generator=g)
    probs = (3 * F.interpolate(low, size=(side, side), mode="bilinear", align_corners=False)).softmax(1)
    return images, probs


def bench_crf(
    settings: list[tuple[int, int, int]], workers: list[int], warmup: int, rounds: int, root: Path | None = None
) -> list[dict]:
    """For each (batch, side, K): {workers: [s per batch of each round]}, interleaved, and whether outputs agree;
    on ROOT/images' photos when given, else on the block scene."""
    from misseg.diagnostics import crf

    rows = []
    previous = crf.get_workers()
    try:
        crf.set_workers(max(workers))  # the one pool, kept while the serial calls run beside it
        for batch, side, K in settings:
            images, probs = photos(root, batch, side, K) if root is not None else scene(batch, side, K)

            def refine(n: int, images: torch.Tensor = images, probs: torch.Tensor = probs):
                return lambda: crf.dense_crf_batch(images, probs, workers=n)

            outputs = {n: refine(n)() for n in workers}  # also starts the pool before the timing
            same = all(torch.equal(outputs[n], outputs[workers[0]]) for n in workers)
            times = interleaved({n: refine(n) for n in workers}, warmup, rounds, torch.device("cpu"))
            rows.append({"batch": batch, "side": side, "K": K, "times": times, "same_output": same})
    finally:
        crf.set_workers(previous)
    return rows
