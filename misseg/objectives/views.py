"""The geometry shared by two views of an image: a horizontal (and optionally vertical) flip, and a shift by whole
cells of the feature grid (`roll`), each undone on a network's output.

The objectives compare outputs of two views position by position, so they need the geometry undone; the flip is
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


def roll(y: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each image's map moved by its own (dy, dx), wrapping around: out[b, ..., i, j] = y[b, ..., i - dy_b, j - dx_b]
    (indices mod H, W). y: (B, ..., H, W); shift: (B, 2) integers. roll(y, -shift) undoes it."""
    B, H, W = y.shape[0], y.shape[-2], y.shape[-1]
    rows = (torch.arange(H, device=y.device) - shift[:, :1]) % H  # (B, H): the source row of every row
    cols = (torch.arange(W, device=y.device) - shift[:, 1:]) % W
    flat = y.reshape(B, -1, H, W)
    index = (rows[:, :, None] * W + cols[:, None, :]).reshape(B, 1, H * W).expand(-1, flat.shape[1], -1)
    return flat.flatten(2).gather(2, index).view_as(y)


def overlap(shift: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(B, H, W) bool: the positions i, j whose content, moved by `roll(., shift)`, lands at i + dy, j + dx without
    wrapping, i.e. where a rolled view still shows what the unrolled one shows at i, j."""
    i = torch.arange(H, device=shift.device)[None, :] + shift[:, :1]  # (B, H)
    j = torch.arange(W, device=shift.device)[None, :] + shift[:, 1:]
    return ((i >= 0) & (i < H))[:, :, None] & ((j >= 0) & (j < W))[:, None, :]
