"""The geometry shared by two views of an image: a horizontal (and optionally vertical) flip, undone on a
network's output.

The objectives compare outputs of two views position by position, so they need the flip undone; the flip is
drawn by the augmentation (misseg/data/augment.py), which imports this function, not the other way round.
"""

from __future__ import annotations

import torch


def unflip(y: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """Undo (or apply: a flip is its own inverse) the flips of the images marked in `flipped`: (B,) horizontal
    flips, or (B, 2) [horizontal, vertical] flips (the two commute). y: (B, ..., H, W)."""
    shape = (-1, *([1] * (y.dim() - 1)))
    if flipped.dim() == 1:
        return torch.where(flipped.view(shape), y.flip(-1), y)
    y = torch.where(flipped[:, 0].view(shape), y.flip(-1), y)
    return torch.where(flipped[:, 1].view(shape), y.flip(-2), y)
