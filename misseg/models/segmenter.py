"""The segmenter: input channels -> C -> L, F_1..F_K -> H, and the class map predicted from (L, H)."""

from __future__ import annotations

import torch
from torch import nn

# p' (eq. 4.8) is both the prediction and a term of the objective; it is computed once, in objectives/mi.py,
# so the model imports it from there rather than keeping a second copy of the equation.
from misseg.models.centroids import merge_probs
from misseg.objectives.mi import region_conditioned, soft_assignment


class MISegmenter(nn.Module):
    """x: (B, 3, H, W) -> L: (B, P, U, V), H: (B, K, P).

    inputs: the input layer (models/sobel.py: RGB, or RGB + Sobel); encoder: C, any module mapping the inputs to
    L with stride d (models/encoder.py, models/backbone.py); heads: F_1..F_K (models/heads.py). When
    `heads.region` is set (a lever beyond the thesis, off by default), each H_k is conditioned on the region it
    claims (objectives.mi.region_conditioned).
    """

    def __init__(self, inputs: nn.Module, encoder: nn.Module, heads: nn.Module, tau: float | None = None) -> None:
        super().__init__()
        self.inputs, self.encoder, self.heads = inputs, encoder, heads
        self.K, self.P, self.d = heads.K, heads.P, encoder.d
        self.tau = self.P**-0.5 if tau is None else float(tau)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.encoder(self.inputs(x))
        H = self.heads(L)
        return L, region_conditioned(L, H, self.tau) if getattr(self.heads, "region", False) else H

    @property
    def groups(self) -> torch.Tensor | None:
        """The class of each row of H where the heads hold more rows than classes (models/centroids.py), else None."""
        return getattr(self.heads, "groups", None)

    def probs(self, L: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
        """p' over the K classes (B, K, U, V): what every prediction (evaluate, predict, export) reads."""
        p = soft_assignment(L, H, self.tau)
        return p if self.groups is None else merge_probs(p, self.groups, self.K)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class map (B, H, W) long, confidence map (B, H, W) and p' at input resolution (B, K, H, W)."""
        return predict_from_probs(self.probs(*self(x)), x.shape[-2:])


def predict_from_probs(
    p: torch.Tensor, size: tuple[int, int] | torch.Size
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """p' (B, K, U, V) upsampled bilinearly to `size`; argmax_k = class map, max_k = confidence map."""
    p = torch.nn.functional.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
    confidence, classes = p.max(dim=1)
    return classes, confidence, p
