"""Naive references of misseg's math, written the way a first implementation usually is.

They exist only to be timed against misseg's batched code in `misseg.bench`: same numbers, slower code.
- `NaiveHeads`: K separate extractor modules called in a Python loop (conv, pool, linear, LayerNorm each).
- `naive_mi_loss`: scores and S built by a loop over the K extractors; negatives scored image by image
  (one (B, P, U, V) elementwise product per anchor image).
- `einsum_mi_loss`: the same loss as a competent researcher writes it first: one einsum per equation and
  one einsum for all (anchor, other image) critic pairs, (B, B, U, V) at once, no Python loop. The fair
  reference for misseg's objective (objectives/mi.py: the same math as torch.bmm on BLAS-friendly layouts).
- `naive_confusion_*`: the IIC / PiCIE evaluation style: keep every predicted and true pixel of the set in
  host memory (numpy), then one confusion matrix over the concatenation (memory grows with the set).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from misseg.models.encoder import conv_block
from misseg.models.heads import HighLevelHeads


class NaiveHeads(nn.Module):
    """F_1..F_K as K independent modules evaluated one after the other. L: (B, P, U, V) -> H: (B, K, P)."""

    def __init__(self, K: int, P: int, width: int = 64, shared_layers: int = 1, pool: int = 4) -> None:
        super().__init__()
        blocks, c = [], P
        for _ in range(shared_layers):
            blocks.append(conv_block(c, width, 3, stride=2))
            c = width
        self.shared = nn.Sequential(*blocks)
        self.convs = nn.ModuleList(conv_block(c, width, 3, stride=1) for _ in range(K))
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.linears = nn.ModuleList(nn.Linear(width * pool * pool, P) for _ in range(K))
        self.norms = nn.ModuleList(nn.LayerNorm(P) for _ in range(K))

    @torch.no_grad()
    def load_from(self, heads: HighLevelHeads) -> NaiveHeads:
        """Copy the weights of misseg's batched heads, so both compute the same function."""
        self.shared.load_state_dict(heads.shared.state_dict())
        conv, bn = heads.per_class[0], heads.per_class[1]
        w = heads.width
        for k in range(len(self.convs)):
            sl = slice(k * w, (k + 1) * w)
            self.convs[k][0].weight.copy_(conv.weight[sl])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(self.convs[k][1], name).copy_(getattr(bn, name)[sl])
            self.linears[k].weight.copy_(heads.weight[k].T)
            self.linears[k].bias.copy_(heads.bias[k])
            self.norms[k].weight.copy_(heads.norm_weight[k])
            self.norms[k].bias.copy_(heads.norm_bias[k])
        return self

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        z = self.shared(L)
        out = []
        for conv, linear, norm in zip(self.convs, self.linears, self.norms, strict=True):
            out.append(norm(linear(self.pool(conv(z)).flatten(1))))
        return torch.stack(out, dim=1)


def naive_mi_loss(L: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    """-JSD bound (eq. 4.8, 4.9, 4.12), all positions valid: loops over K and over anchor images."""
    B, K = L.shape[0], H.shape[1]
    logits = torch.stack([(L * H[:, k, :, None, None]).sum(1) for k in range(K)], dim=1) * tau
    p = torch.softmax(logits, dim=1)
    S = sum(p[:, k : k + 1] * H[:, k, :, None, None] for k in range(K))
    joint = -F.softplus(-(L * S).sum(1)).mean()
    marginal, count = 0.0, 0
    for b in range(B):  # anchor image b against every image c of the batch
        T = (L[b : b + 1] * S).sum(1)  # (B, U, V)
        others = torch.cat([T[:b], T[b + 1 :]])
        marginal = marginal + F.softplus(others).sum()
        count += others.numel()
    return -(joint - marginal / count)


def einsum_mi_loss(L: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    """-JSD bound (eq. 4.8, 4.9, 4.12), all positions valid: one einsum per contraction, no loop."""
    B = L.shape[0]
    p = torch.softmax(torch.einsum("bpuv,bkp->bkuv", L, H) * tau, dim=1)  # eq. 4.8 / 4.14
    S = torch.einsum("bkuv,bkp->bpuv", p, H)  # eq. 4.9
    T = torch.einsum("apuv,bpuv->abuv", L, S)  # critic of anchor a's L with image b's S, every pair
    joint = -F.softplus(-T.diagonal(dim1=0, dim2=1)).mean()
    others = ~torch.eye(B, dtype=torch.bool, device=L.device)
    marginal = F.softplus(T[others]).mean()  # eq. 4.12: the same position of every other image
    return -(joint - marginal)


class NaiveConfusion:
    """IIC / PiCIE evaluation style: collect all pixels on the host, confusion + Hungarian at the end."""

    def __init__(self, num_pred: int, num_classes: int, ignore_index: int = 255) -> None:
        self.num_pred, self.num_classes, self.ignore_index = num_pred, num_classes, ignore_index
        self.preds: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(pred.cpu().numpy().reshape(-1))
        self.targets.append(target.cpu().numpy().reshape(-1))

    def compute(self) -> dict:
        pred, target = np.concatenate(self.preds), np.concatenate(self.targets)
        keep = target != self.ignore_index
        pred, target = pred[keep].astype(np.int64), target[keep].astype(np.int64)
        n = self.num_classes
        conf = np.bincount(pred * n + target, minlength=self.num_pred * n).reshape(self.num_pred, n)
        rows, cols = linear_sum_assignment(conf, maximize=True)
        tp = conf[rows, cols].sum()
        return {"pa": float(tp / conf.sum()), "confusion": conf}
