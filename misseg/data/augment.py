"""Batched augmentations on the device, one random draw per image (no loop over images or pixels).

Used to make the second views inside the training step (MI's `model.views=2`, IIC) and, through
misseg.data.batch_augment, the colour jitter of `data.augment.on_device=true`. Colour jitter changes
appearance only; the flips (horizontal; vertical on request) are geometric and are undone on the network output
(`unflip`).

The colour jitter is kornia's `kornia.augmentation.ColorJitter`, which implements torchvision's ColorJitter
(the worker path, misseg.data.transforms.train_transform) batched: the same factor ranges, the same four
formulas (brightness multiplies, contrast and saturation blend with the grayscale mean / grayscale, hue is an
HSV hue shift in turns), clamped to [0, 1], a random order of the four steps. Two differences remain, both
outside one image's distribution: kornia draws the order once per batch where torchvision draws it per image
(each image's order is still uniform over the 24), and the worker path rounds to uint8 after every step
(tests/test_augment.py checks each step against torchvision.transforms.v2.functional).
"""

from __future__ import annotations

import functools

import torch

from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.objectives.views import unflip

Range = float | tuple[float, float]  # a strength s (factor uniform in [1 - s, 1 + s], hue in [-s, s]) or (lo, hi)


@functools.lru_cache(maxsize=16)
def _jitter_module(brightness: Range, contrast: Range, saturation: Range, hue: Range) -> torch.nn.Module:
    # imported here: importing the modules need not pay for kornia's import until a view is jittered
    from kornia.augmentation import ColorJitter

    # kornia draws the (B,) factors on the CPU (its default) and copies them to x's device without blocking.
    # Drawn on a GPU instead, its per-step "is any factor not neutral" guard would sync the host 4 times a call.
    return ColorJitter(brightness, contrast, saturation, hue, p=1.0)


def color_jitter(
    x: torch.Tensor,
    brightness: Range = 0.4,
    contrast: Range = 0.4,
    saturation: Range = 0.4,
    hue: Range = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x: (B, 3, H, W) RGB in [0, 1] -> jittered copy in [0, 1], one draw per image (torchvision's ColorJitter).

    Each strength is a float s (factor uniform in [1 - s, 1 + s]; hue shift uniform in [-s, s] turns, s <= 0.5)
    or a (lo, hi) range, as in torchvision. kornia takes no torch.Generator and draws from the global CPU RNG:
    with `generator`, that RNG is seeded from it inside torch.random.fork_rng and restored afterwards, so the
    result is a function of the generator's state and the global stream is left untouched.
    """
    aug = _jitter_module(brightness, contrast, saturation, hue)
    if generator is None:
        return aug(x)
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would also reseed every GPU
        return aug(x)


def random_flip(
    x: torch.Tensor,
    p: float = 0.5,
    generator: torch.Generator | None = None,
    vertical: bool = False,
    horizontal: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each image horizontally with probability p, and with vertical=True also vertically (independently,
    with probability p). -> (flipped batch, which were flipped: (B,) bool, or (B, 2) [horizontal, vertical] with
    vertical=True). horizontal=False: no horizontal flips (the vertical ones alone)."""
    B = x.shape[0]
    flipped = (
        torch.rand(B, device=x.device, generator=generator) < p if horizontal else x.new_zeros(B, dtype=torch.bool)
    )
    if vertical:  # drawn after the horizontal flips, so vertical=False keeps the random stream it always had
        flipped = torch.stack([flipped, torch.rand(B, device=x.device, generator=generator) < p], dim=1)
    return unflip(x, flipped), flipped


def jittered_flipped_view(
    x: torch.Tensor,
    jitter: float = 0.4,
    hue: float = 0.1,
    flip: bool = True,
    generator: torch.Generator | None = None,
    vflip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, 3, H, W) ImageNet-normalised -> (second view, normalised like x; flipped as `random_flip` gives it).
    flip / vflip: flip horizontally / vertically at random (independently; vflip so that a cluster map that follows
    image rows disagrees with its own second view)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    rgb = (x[:, :3] * std + mean).clamp(0, 1)
    if jitter > 0 or hue > 0:
        rgb = color_jitter(rgb, jitter, jitter, jitter, hue, generator)
    view = (rgb - mean) / std
    if not (flip or vflip):
        return view, torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    return random_flip(view, generator=generator, vertical=vflip, horizontal=flip)
