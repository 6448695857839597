"""Local encoder C: image -> local features L, one P-dim vector per overlapping patch."""

from __future__ import annotations

import math

import torch
from torch import nn


def conv_block(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LocalEncoder(nn.Module):
    """C in the thesis (fig. 4.3): `depth` Conv(W x W)/BN/ReLU blocks, total stride d, then a 1x1 conv to P.

    The first log2(d) blocks have stride 2, so U = H / d and V = W / d; every output vector sees an
    overlapping patch of the image (its receptive field grows with depth and kernel). The last 1x1
    projection is linear (no BN/ReLU) so L can take any sign, as a dot-product critic needs.
    Layer sizes are our choice (the figure gives none): widths double at each stride, capped at `max_width`.

    x: (B, C_in, H, W) -> L: (B, P, H/d, W/d)
    """

    def __init__(
        self,
        in_channels: int = 3,
        P: int = 2048,
        d: int = 4,
        depth: int = 4,
        width: int = 64,
        max_width: int = 512,
        kernel: int = 3,
    ) -> None:
        super().__init__()
        n_down = int(round(math.log2(d)))
        if 2**n_down != d:
            raise ValueError(f"model.d={d}: the downsampling factor must be a power of 2 (1, 2, 4, 8, ...)")
        if depth < max(n_down, 1):
            raise ValueError(f"model.encoder.depth={depth} must be >= log2(model.d)={n_down} (one stride-2 block each)")
        layers, c = [], in_channels
        for i in range(depth):
            stride = 2 if i < n_down else 1
            c_out = min(width * 2 ** min(i, n_down), max_width)
            layers.append(conv_block(c, c_out, kernel, stride))
            c = c_out
        self.blocks = nn.Sequential(*layers)
        self.project = nn.Conv2d(c, P, kernel_size=1)
        self.P, self.d = P, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.blocks(x))
