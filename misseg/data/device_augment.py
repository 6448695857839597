"""Batched augmentation on the device, for second views made inside the training step (no host round trip).

x is a normalised batch (B, C, H, W) whose first 3 channels are RGB (ImageNet mean/std); every image
gets its own random factors. Extra channels (none today: Sobel is computed inside the model) pass through.
"""

from __future__ import annotations

import math

import torch

from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD

# RGB <-> YIQ: a hue shift is a rotation of the chroma plane (I, Q)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def colour_jitter(x: torch.Tensor, strength: float = 0.4, hue: float = 0.1) -> torch.Tensor:
    """Random brightness, contrast, saturation in [1 - strength, 1 + strength] and hue shift in [-hue, hue]
    (fraction of a full turn), per image.  x: (B, 3+, H, W) normalised -> same shape."""
    B = x.shape[0]
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    rgb = x[:, :3] * std + mean

    def factor() -> torch.Tensor:
        return (1 + strength * (2 * torch.rand(B, 1, 1, 1, device=x.device, dtype=x.dtype) - 1)).clamp_min(0)

    rgb = rgb * factor()
    grey = (rgb * torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(
        1, keepdim=True
    )
    rgb = grey.mean((2, 3), keepdim=True) + factor() * (rgb - grey.mean((2, 3), keepdim=True))
    rgb = grey + factor() * (rgb - grey)
    if hue > 0:
        theta = 2 * math.pi * hue * (2 * torch.rand(B, device=x.device, dtype=x.dtype) - 1)
        cos, sin = theta.cos(), theta.sin()
        rot = torch.zeros(B, 3, 3, device=x.device, dtype=x.dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        to_yiq = _RGB_TO_YIQ.to(x.device, x.dtype)
        mix = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (B, 3, 3)
        rgb = torch.einsum("bij,bjhw->bihw", mix, rgb)
    rgb = (rgb.clamp(0, 1) - mean) / std
    return torch.cat([rgb, x[:, 3:]], dim=1)


def random_hflip(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip a random half of the images horizontally. -> (flipped batch, (B,) bool flags to undo it)."""
    flags = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flags.view(-1, 1, 1, 1), x.flip(-1), x), flags
