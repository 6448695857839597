"""Linear probe on frozen local features (as STEGO / PiCIE report it): a 1x1 conv = per-position logistic
regression from L (N, P, U, V) to the true classes, its logits upsampled bilinearly to the mask size before
the loss and the argmax (STEGO's protocol). Labels fit the probe only; the segmenter never sees them.

The probe is fit on one seeded part of the evaluation images and scored on the other (`probe_split`), so
its figure measures what L makes linearly available, not what a P-dimensional classifier can memorise.
Its classes are the true classes, so it is scored with the identity mapping, not a Hungarian matching.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from misseg.metrics.matching import scores_from_confusion


def probe_split(n: int, fit_fraction: float = 0.5, seed: int = 0) -> tuple[list[int], list[int]]:
    """Disjoint seeded split of n images -> (fit positions, test positions), each sorted and non-empty.

    The fit part holds round(fit_fraction * n) images, clamped to 1..n-1.
    """
    if n < 2:
        raise ValueError(f"a probe needs at least 2 evaluation images (one to fit, one to score), got {n}")
    if not 0 < fit_fraction < 1:
        raise ValueError(f"fit_fraction={fit_fraction!r}: must be in (0, 1)")
    n_fit = min(max(int(round(fit_fraction * n)), 1), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(perm[:n_fit]), sorted(perm[n_fit:])


class LinearProbe(nn.Module):
    """Per-channel standardisation (fit-set statistics, frozen) + 1x1 conv P -> num_classes.

    The standardisation is an affine map folded into the same linear classifier; it only makes one
    learning rate work for encoders whose feature scales differ by orders of magnitude (random vs trained).
    """

    def __init__(self, P: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(P))
        self.register_buffer("std", torch.ones(P))
        self.conv = nn.Conv2d(P, num_classes, kernel_size=1)
        # zero init: the loss is convex in the weights, so the fit does not depend on an init seed
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, L: torch.Tensor, size: tuple[int, int] | torch.Size | None = None) -> torch.Tensor:
        """L (B, P, U, V) -> logits (B, num_classes, U, V), or upsampled bilinearly to `size`."""
        z = (L.float() - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        logits = self.conv(z)
        if size is not None and tuple(size) != tuple(logits.shape[-2:]):
            logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
        return logits


def _check_labels(masks: torch.Tensor, num_classes: int, ignore_index: int) -> None:
    labels = masks.unique()
    bad = labels[(labels != ignore_index) & ((labels < 0) | (labels >= num_classes))]
    if bad.numel():
        raise ValueError(
            f"masks hold class {int(bad[0])} but num_classes={num_classes} "
            f"(valid labels are 0..{num_classes - 1} and {ignore_index} = ignore)"
        )


def _channel_stats(features: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over all images and positions, in float64 chunks (features may be bf16)."""
    P = features.shape[1]
    s = torch.zeros(P, dtype=torch.float64, device=features.device)
    s2 = torch.zeros_like(s)
    count = 0
    for i in range(0, features.shape[0], batch_size):
        f = features[i : i + batch_size].double()
        s += f.sum((0, 2, 3))
        s2 += f.square().sum((0, 2, 3))
        count += f.numel() // P
    mean = s / count
    std = (s2 / count - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.float().clamp_min(1e-6)  # a constant channel stays 0 after centring


def fit_linear_probe(
    features: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    epochs: int = 20,
    lr: float = 1e-2,
    batch_size: int = 16,
    seed: int = 0,
    ignore_index: int = 255,
    schedule: str = "cosine",
    min_steps: int = 1000,
) -> tuple[LinearProbe, dict]:
    """Fit a LinearProbe on features (N, P, U, V) and masks (N, H, W) (ignore_index = unlabelled) by Adam on the
    pixel-averaged cross-entropy of the upsampled logits, the lr decayed by `schedule` (cosine or constant), for
    `epochs` passes or more: as many as make at least `min_steps` steps (a small set needs more passes to
    converge: CamVid's 116 fit images give 8 steps a pass). -> (probe in eval mode, {epochs (done), lr, schedule,
    steps, final_loss, fit_seconds}). Deterministic for a seed: zero init, a seeded image order. The probe lives
    on features.device. `schedule="constant", min_steps=0` is the protocol of the probe numbers measured before
    both existed.
    """
    if features.ndim != 4 or masks.ndim != 3 or features.shape[0] != masks.shape[0]:
        raise ValueError(f"features (N, P, U, V) and masks (N, H, W) expected, got {features.shape}, {masks.shape}")
    _check_labels(masks, num_classes, ignore_index)
    t0 = time.perf_counter()
    device = features.device
    probe = LinearProbe(features.shape[1], num_classes).to(device)
    probe.mean, probe.std = _channel_stats(features, batch_size)
    optimizer = torch.optim.Adam(probe.conv.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    N, steps, last_losses = features.shape[0], 0, []
    per_epoch = -(-N // batch_size)
    epochs = max(epochs, -(-min_steps // per_epoch))
    total = epochs * per_epoch
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule={schedule!r}: constant or cosine")
    # cosine: the lr decays to 0 over the fit, so Adam settles in the (convex) optimum instead of oscillating
    # around it, whatever P (measured at P = 2048: a constant 1e-2 ends at 1.8x the fit loss of the cosine fit)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total) if schedule == "cosine" else None
    for _ in range(epochs):
        last_losses = []
        for idx in torch.randperm(N, generator=g).split(batch_size):
            # features and masks may live on different devices (features on the GPU, masks on the CPU)
            target = masks.index_select(0, idx.to(masks.device)).to(device).long()
            logits = probe(features.index_select(0, idx.to(device)), target.shape[-2:])
            # summed then divided by the labelled count: a batch with no labelled pixel gives 0, not NaN
            labelled = (target != ignore_index).sum()
            if int(labelled) == 0:
                continue
            loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum") / labelled
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            steps += 1
            last_losses.append(loss.detach())
    probe.eval()
    final = float(torch.stack(last_losses).mean()) if last_losses else float("nan")
    info = {"epochs": epochs, "lr": lr, "schedule": schedule, "steps": steps, "final_loss": final}
    return probe, info | {"fit_seconds": time.perf_counter() - t0}


def identity_scores(confusion: torch.Tensor | np.ndarray) -> dict:
    """PA / mIoU / per-class IoU of a (num_classes, num_classes) confusion whose rows are already classes."""
    return scores_from_confusion(confusion, np.arange(np.asarray(confusion).shape[0]))
