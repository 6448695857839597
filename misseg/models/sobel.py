"""Input channels: RGB, optionally + Sobel dx, dy of the grey image (IIC's COCO-Stuff setting)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_GREY = (0.299, 0.587, 0.114)


class SobelInput(nn.Module):
    """x: (B, 3, H, W) normalised RGB -> (B, 5, H, W) = RGB, d/dx grey, d/dy grey (or RGB unchanged)."""

    def __init__(self, enabled: bool = False) -> None:
        super().__init__()
        self.enabled = enabled
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        self.register_buffer("kernel", torch.stack([gx, gx.T]).unsqueeze(1), persistent=False)
        self.register_buffer("grey", torch.tensor(_GREY).view(1, 3, 1, 1), persistent=False)

    @property
    def out_channels(self) -> int:
        return 5 if self.enabled else 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        grey = (x * self.grey).sum(1, keepdim=True)
        edges = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), self.kernel)
        return torch.cat([x, edges], dim=1)
