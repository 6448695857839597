"""IIC's segmenter on misseg's encoder: input channels -> C -> L, then 1x1 conv heads to K (and K_over) logits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class IICSegmenter(nn.Module):
    """x: (B, 3, H, W) -> {"logits": (B, K, U, V), "logits_over": (B, K_over, U, V) when K_over is set}.

    inputs and encoder are the same parts as the MI method's (conf/model/encoder/), so the two objectives are
    compared on one backbone. The heads act on L (P channels); L's last 1x1 projection is linear, so P is a
    bottleneck width rather than extra capacity.
    """

    def __init__(self, inputs: nn.Module, encoder: nn.Module, K: int, K_over: int | None = None) -> None:
        super().__init__()
        self.inputs, self.encoder = inputs, encoder
        P = encoder.P
        self.head = nn.Conv2d(P, K, kernel_size=1)
        self.head_over = nn.Conv2d(P, K_over, kernel_size=1) if K_over else None
        self.K, self.K_over, self.P, self.d = K, K_over, P, encoder.d

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        L = self.encoder(self.inputs(x))
        out = {"logits": self.head(L)}
        if self.head_over is not None:
            out["logits_over"] = self.head_over(L)
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class map (B, H, W), confidence (B, H, W), probabilities (B, K, H, W) at input resolution."""
        return predict_from_logits(self(x)["logits"], x.shape[-2:])


def predict_from_logits(
    logits: torch.Tensor, size: tuple[int, int] | torch.Size
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """softmax_k, upsampled bilinearly to `size` (as the MI method's p'); argmax = class, max = confidence."""
    p = F.interpolate(torch.softmax(logits, dim=1), size=tuple(size), mode="bilinear", align_corners=False)
    confidence, classes = p.max(dim=1)
    return classes, confidence, p
