"""Batched augmentations on the device, one random draw per image (no loop over images or pixels).

Used to make IIC's second view inside the training step: colour jitter changes appearance only, the
horizontal flip is geometric and is undone on the network output (`unflip`).
"""

from __future__ import annotations

import math

import torch

from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.objectives.views import unflip

_GREY = (0.299, 0.587, 0.114)
# RGB -> YIQ; a hue shift is a rotation of the (I, Q) chroma plane
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _uniform(B: int, strength: float, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """(B, 1, 1, 1) factors uniform in [1 - strength, 1 + strength] (torchvision's convention)."""
    r = torch.rand(B, 1, 1, 1, device=device, generator=generator)
    return 1 + (2 * r - 1) * strength


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x: (B, 3, H, W) RGB in [0, 1] -> jittered copy in [0, 1]; hue in [0, 0.5] is a fraction of a full turn."""
    B, device = x.shape[0], x.device
    grey_w = torch.tensor(_GREY, device=device, dtype=x.dtype).view(1, 3, 1, 1)
    x = x * _uniform(B, brightness, device, generator)
    mean = (x * grey_w).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * _uniform(B, contrast, device, generator) + mean
    grey = (x * grey_w).sum(1, keepdim=True)
    x = (x - grey) * _uniform(B, saturation, device, generator) + grey
    if hue > 0:
        angle = (2 * torch.rand(B, device=device, generator=generator) - 1) * hue * 2 * math.pi
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(B, 3, 3, device=device, dtype=x.dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        yiq = torch.tensor(_YIQ, device=device, dtype=x.dtype)
        m = torch.linalg.inv(yiq) @ rot @ yiq  # (B, 3, 3)
        x = torch.einsum("bij,bjhw->bihw", m, x)
    return x.clamp(0, 1)


def random_flip(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each image horizontally with probability p. -> (flipped batch, (B,) bool which were flipped)."""
    flipped = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return unflip(x, flipped), flipped


def jittered_flipped_view(
    x: torch.Tensor,
    jitter: float = 0.4,
    hue: float = 0.1,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, 3, H, W) ImageNet-normalised -> (second view, normalised like x; (B,) bool flipped)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    rgb = (x[:, :3] * std + mean).clamp(0, 1)
    if jitter > 0 or hue > 0:
        rgb = color_jitter(rgb, jitter, jitter, jitter, hue, generator)
    view = (rgb - mean) / std
    if not flip:
        return view, torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    return random_flip(view, generator=generator)
