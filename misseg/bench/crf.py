"""Dense-CRF throughput: one batch refined in this process vs spread over worker processes (`crf_workers`).

Why it is measured: pydensecrf2 holds the GIL, so the CRF target of a training step
(`model.objective.crf_target_weight`) runs one image after another; at batch 64 that is about a second, more than
a GPU's step. The images are a piecewise-constant scene with a noisy prediction (the CRF's real work: it converges
in its 10 mean-field iterations either way); pooled and serial outputs are checked to be equal.
"""

from __future__ import annotations

import math

import torch

from misseg.bench.train_step import interleaved


def scene(batch: int, side: int, K: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 3, side, side) in [0, 1], probs (B, K, side, side)): K-colour blocks, a noisy prediction of them."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, K, (batch, 4, 4), generator=g)
    truth = cells.repeat_interleave(math.ceil(side / 4), 1).repeat_interleave(math.ceil(side / 4), 2)[:, :side, :side]
    colours = torch.rand(K, 3, generator=g)
    images = colours[truth].permute(0, 3, 1, 2)
    logits = 2 * torch.nn.functional.one_hot(truth, K).permute(0, 3, 1, 2) + 1.6 * torch.randn(
        batch, K, side, side, generator=g
    )
    return images, logits.softmax(1)


def bench_crf(settings: list[tuple[int, int, int]], workers: list[int], warmup: int, rounds: int) -> list[dict]:
    """For each (batch, side, K): {workers: [s per batch of each round]}, interleaved, and whether outputs agree."""
    from misseg.diagnostics import crf

    rows = []
    previous = crf.get_workers()
    try:
        for batch, side, K in settings:
            images, probs = scene(batch, side, K)

            def refine(n: int, images: torch.Tensor = images, probs: torch.Tensor = probs):
                def call() -> torch.Tensor:
                    crf.set_workers(n)  # the pool of size n is kept between calls
                    return crf.dense_crf_batch(images, probs)

                return call

            outputs = {n: refine(n)() for n in workers}  # also starts each pool before the timing
            same = all(torch.equal(outputs[n], outputs[workers[0]]) for n in workers)
            times = interleaved({n: refine(n) for n in workers}, warmup, rounds, torch.device("cpu"))
            rows.append({"batch": batch, "side": side, "K": K, "times": times, "same_output": same})
    finally:
        crf.set_workers(previous)
    return rows
