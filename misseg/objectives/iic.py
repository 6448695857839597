"""IIC's segmentation objective (Ji et al. 2019, "Invariant Information Clustering"), as pure tensor functions.

Shapes: p1, p2 (B, K, H, W) per-pixel cluster distributions (softmax over K) of two views of the same
images, already in the same spatial frame (geometric transforms undone); valid (B, H, W) bool.

The joint distribution P (K, K) of the cluster of a pixel in view 1 and the cluster of a pixel at most T
pixels away (in each direction) in view 2 is estimated over the whole batch with one conv2d:
view 1 is the input with the batch as channels, view 2 the kernel, zero padding T, so output position
(dy, dx) holds sum_{b, y, x} p1[b, i, y + dy - T, x + dx - T] * p2[b, j, y, x] for every pair (i, j).
Summing over the (2T+1)^2 displacements, normalising and symmetrising gives P; the loss is

    -sum_ij P_ij (log P_ij - lamb log P_i - lamb log P_j),   = -I(z1; z2) for lamb = 1,

where lamb > 1 favours balanced marginals (IIC's "lamb"). Probabilities are clamped below at eps so
one-hot (saturated) predictions give finite values and gradients.
"""

from __future__ import annotations

import sys

import torch
from torch.nn import functional as F

EPS = sys.float_info.epsilon  # the value IIC uses


def joint_distribution(
    p1: torch.Tensor, p2: torch.Tensor, T: int = 1, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """(K, K) symmetric joint P(z1 = i, z2 = j) over pixel pairs at displacements |dy|, |dx| <= T, summing to 1.

    valid: pixels outside it are zeroed in both views, so they take part in no pair.
    """
    if p1.shape != p2.shape or p1.dim() != 4:
        raise ValueError(f"p1 {tuple(p1.shape)} and p2 {tuple(p2.shape)} must both be (B, K, H, W)")
    if T < 0:
        raise ValueError(f"T={T}: the displacement half-width must be >= 0")
    if valid is not None:
        w = valid[:, None].to(p1.dtype)
        p1, p2 = p1 * w, p2 * w
    # channels = clusters, the batch plays the role of conv input channels: one conv does every pair (i, j)
    x = p1.transpose(0, 1).contiguous()  # (K, B, H, W)
    kernel = p2.transpose(0, 1).contiguous()  # (K, B, H, W)
    joint = F.conv2d(x, kernel, padding=T).sum(dim=(2, 3))  # (K, K): summed over the (2T+1)^2 displacements
    # the total is the (constant) number of valid pairs; detached as in IIC, and no host sync
    joint = joint / joint.sum().detach().clamp_min(EPS)
    return (joint + joint.t()) / 2


def iic_loss_from_joint(joint: torch.Tensor, lamb: float = 1.0, eps: float = EPS) -> dict[str, torch.Tensor]:
    """loss = -sum_ij P_ij (log P_ij - lamb log P_i - lamb log P_j); mi = the same with lamb = 1, negated.

    Marginals are computed before the eps clamp (they must sum to 1); the clamp only guards the logs.
    """
    p_i = joint.sum(dim=1, keepdim=True)
    p_j = joint.sum(dim=0, keepdim=True)
    log_joint = torch.log(joint.clamp_min(eps))
    log_i, log_j = torch.log(p_i.clamp_min(eps)), torch.log(p_j.clamp_min(eps))
    pmi = log_joint - log_i - log_j
    loss = -(joint * (log_joint - lamb * log_i - lamb * log_j)).sum()
    return {"loss": loss, "mi": (joint * pmi).sum()}


def iic_segmentation_loss(
    p1: torch.Tensor,
    p2: torch.Tensor,
    T: int = 1,
    lamb: float = 1.0,
    valid: torch.Tensor | None = None,
    eps: float = EPS,
) -> dict[str, torch.Tensor]:
    """IIC's dense loss for two aligned views: {"loss", "mi", "joint"}. See the module docstring."""
    joint = joint_distribution(p1, p2, T, valid)
    out = iic_loss_from_joint(joint, lamb, eps)
    out["joint"] = joint
    return out


class IICObjective:
    """IIC's loss with its settings (conf/model/objective/iic.yaml): displacement half-width T, lambda `lamb`,
    the second view's colour jitter / hue / flip (drawn by the method; `vflip`: a vertical flip too, a lever beyond
    IIC), and whether p is upsampled to the input size before the loss (`loss_at_input_size`: T then counts input
    pixels)."""

    def __init__(
        self,
        T: int = 1,
        lamb: float = 1.0,
        jitter: float = 0.4,
        hue: float = 0.1,
        flip: bool = True,
        loss_at_input_size: bool = False,
        vflip: bool = False,
    ) -> None:
        self.T, self.lamb, self.jitter, self.hue, self.flip, self.vflip = T, lamb, jitter, hue, flip, vflip
        self.loss_at_input_size = loss_at_input_size

    def __call__(
        self, p1: torch.Tensor, p2: torch.Tensor, valid: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return iic_segmentation_loss(p1, p2, self.T, self.lamb, valid)
