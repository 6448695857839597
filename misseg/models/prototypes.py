"""Prototype heads (a lever beyond the thesis, `model/heads=prototypes`): H_k is one learned vector per class,
the same for every image, instead of F_k(L) of the image.

Why: on the frozen ImageNet network (experiments/scale section 12) eq. 4.12 is met almost without the
segmentation (bound -0.593 with the model's p', -0.661 with p' uniform) because the image-level F_k carry a code
of their image: <L_ij(x), S_ij(x)> and <L_ij(x), S_ij(x')> differ through H(x) vs H(x'), whatever p' is. With
image-independent H_k, S_ij(x) depends on x only through p'_ij(x), so the bound can be raised only by the
segmentation, and cluster k means the same thing in every image.

Scale as the thesis's heads: F_k end in a LayerNorm, so |H_k| ~ sqrt(P); the prototypes are layer-normalised
too (with a learned gain and bias, as that LayerNorm), so tau = 1/sqrt(P) keeps its meaning.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PrototypeHeads(nn.Module):
    """L (B, P, U, V) -> H (B, K, P): the K learned prototypes, repeated for each image (L is not read)."""

    def __init__(self, K: int, P: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(K, P))
        self.norm_weight = nn.Parameter(torch.ones(K, P))
        self.norm_bias = nn.Parameter(torch.zeros(K, P))
        self.K, self.P, self.region = K, P, False

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        H = F.layer_norm(self.prototypes, (self.P,)) * self.norm_weight + self.norm_bias
        return H.to(L.dtype).expand(L.shape[0], self.K, self.P)
