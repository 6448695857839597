"""The geometry shared by two views of an image: a horizontal flip, undone on a network's output.

The objectives compare outputs of two views position by position, so they need the flip undone; the flip is
drawn by the augmentation (misseg/data/augment.py), which imports this function, not the other way round.
"""

from __future__ import annotations

import torch


def unflip(y: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """Undo (or apply: a flip is its own inverse) the horizontal flip of the images marked in `flipped` (B,)."""
    return torch.where(flipped.view(-1, *([1] * (y.dim() - 1))), y.flip(-1), y)
