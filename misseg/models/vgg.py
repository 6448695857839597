"""IIC's COCO-Stuff trunk (Ji et al. 2019, "SegmentationNet10a", VGG11-like) as an encoder C: image -> L.

IIC's layers: Conv3x3/BN/ReLU with 64, 128 channels, MaxPool 2, 256, 256, then 512, 512 with dilation 2 (padding =
dilation, so no shrinking), output stride 2. IIC's 1x1 head then maps to K; here a linear 1x1 conv maps to P, as
in the thesis's encoder, so L can take any sign. For model.d = 4 (misseg's default) a second MaxPool follows the
256 block, which also widens the receptive field; at d = 2 the trunk is IIC's exactly.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class VGGTrunkEncoder(nn.Module):
    """x: (B, C_in, H, W) -> L: (B, P, H/d, W/d), d in (2, 4); `width` scales every layer (IIC: 64)."""

    def __init__(self, in_channels: int = 3, P: int = 2048, d: int = 2, width: int = 64) -> None:
        super().__init__()
        if d not in (2, 4):
            raise ValueError(f"model.d={d}: the IIC trunk has output stride 2 (IIC's) or 4 (one more pooling)")
        w = width
        layers = [conv(in_channels, w), conv(w, 2 * w), nn.MaxPool2d(2), conv(2 * w, 4 * w), conv(4 * w, 4 * w)]
        if d == 4:
            layers.append(nn.MaxPool2d(2))
        layers += [conv(4 * w, 8 * w, dilation=2), conv(8 * w, 8 * w, dilation=2)]
        self.blocks = nn.Sequential(*layers)
        self.project = nn.Conv2d(8 * w, P, kernel_size=1)
        self.P, self.d = P, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.blocks(x))
