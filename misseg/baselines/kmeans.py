"""Dataset-wide K-means on pixel colours (thesis sec. 5.5): one set of centres for the whole dataset.

Mini-batch Lloyd iterations in torch on whatever device the data is on; evaluated with the same
Hungarian confusion metric as every other method.
"""

from __future__ import annotations

import torch

from misseg.metrics.segmentation import HungarianSegmentationMetric


def kmeans_fit(batches, K: int, iters: int = 10, max_pixels_per_batch: int = 200_000, seed: int = 0) -> torch.Tensor:
    """batches: a re-iterable of (N, C) pixel tensors. -> centres (K, C).

    Each pass accumulates per-cluster sums and counts over all batches (exact Lloyd on a random pixel
    subsample per batch); empty clusters are re-seeded from the last batch.
    """
    g = torch.Generator().manual_seed(seed)
    centres = None
    for _ in range(iters):
        sums = counts = None
        for x in batches:
            x = x.float()
            if x.shape[0] > max_pixels_per_batch:
                x = x[torch.randperm(x.shape[0], generator=g)[:max_pixels_per_batch].to(x.device)]
            if centres is None:
                centres = x[torch.randperm(x.shape[0], generator=g)[:K].to(x.device)].clone()
            if sums is None:
                sums, counts = torch.zeros_like(centres), torch.zeros(K, device=x.device)
            assign = torch.cdist(x, centres).argmin(1)
            sums.index_add_(0, assign, x)
            counts += torch.bincount(assign, minlength=K).float()
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centres[empty] = x[torch.randint(0, x.shape[0], (int(empty.sum()),), generator=g).to(x.device)]
    return centres


def kmeans_predict(pixels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """pixels: (B, C, H, W) -> cluster ids (B, H, W)."""
    B, C, H, W = pixels.shape
    flat = pixels.permute(0, 2, 3, 1).reshape(-1, C).float()
    return torch.cdist(flat, centres).argmin(1).reshape(B, H, W)


def kmeans_rgb_baseline(loader, K: int, num_classes: int, iters: int = 10, seed: int = 0) -> dict:
    """Fit K-means on the RGB pixels served by `loader` (batches of {"image", "mask"}) and score it."""

    class Pixels:
        def __iter__(self):
            for batch in loader:
                x = batch["image"][:, :3]
                yield x.permute(0, 2, 3, 1).reshape(-1, 3)

    centres = kmeans_fit(Pixels(), K, iters=iters, seed=seed)
    metric = HungarianSegmentationMetric(K, num_classes)
    for batch in loader:
        metric.update(kmeans_predict(batch["image"][:, :3], centres), batch["mask"])
    return metric.compute()
