"""Built-in synthetic dataset, the embedded default: classes are textures, colours are random.

Each image is a Voronoi partition into regions; each region gets a class (a texture: flat, horizontal
stripes, vertical stripes, checker, dots, diagonal stripes) drawn in two colours picked at random per
region. Colour therefore says nothing about the class, so K-means on RGB pixels fails, while a model
that learns local structure can succeed. Image i depends only on (seed, i): deterministic, no files.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from misseg.data.transforms import apply

TEXTURES = ("flat", "horizontal", "vertical", "checker", "dots", "diagonal")


def texture_patterns(h: int, w: int, period: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """(R,) periods and (R, 2) phases -> (R, len(TEXTURES), h, w) binary {0, 1} patterns."""
    y = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    per = period.view(-1, 1, 1)
    yy = (y + phase[:, 0].view(-1, 1, 1)) / per
    xx = (x + phase[:, 1].view(-1, 1, 1)) / per
    stripe_y = (yy.frac() < 0.5).float().expand(-1, h, w)
    stripe_x = (xx.frac() < 0.5).float().expand(-1, h, w)
    checker = (stripe_y != stripe_x).float()
    dots = (((yy.frac() - 0.5) ** 2 + (xx.frac() - 0.5) ** 2) < 0.09).float()
    diagonal = (((yy + xx) / math.sqrt(2)).frac() < 0.5).float()
    flat = torch.zeros_like(checker)
    return torch.stack([flat, stripe_y, stripe_x, checker, dots, diagonal], dim=1)


def make_image(
    seed: int, index: int, size: int, num_classes: int, regions: tuple[int, int] = (2, 5), noise: float = 0.04
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> image (3, size, size) uint8, mask (size, size) uint8 with the texture class of every pixel."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    R = int(torch.randint(regions[0], regions[1] + 1, (1,), generator=g))
    centres = torch.rand(R, 2, generator=g) * size
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dist = (ys[None] - centres[:, 0, None, None]) ** 2 + (xs[None] - centres[:, 1, None, None]) ** 2
    region = dist.argmin(0)  # (size, size)
    cls = torch.randint(0, num_classes, (R,), generator=g)
    period = torch.randint(4, 9, (R,), generator=g).float()
    phase = torch.rand(R, 2, generator=g) * period[:, None]
    colours = torch.rand(R, 2, 3, generator=g)  # two random colours per region
    pattern = texture_patterns(size, size, period, phase)[torch.arange(R), cls]  # (R, size, size)
    pix = pattern.gather(0, region[None])[0]  # (size, size) pattern value of the pixel's region
    a, b = colours[region, 0], colours[region, 1]  # (size, size, 3)
    rgb = a + (b - a) * pix[..., None] + noise * torch.randn(size, size, 3, generator=g)
    image = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(2, 0, 1).contiguous()
    return image, cls[region].to(torch.uint8)


class SyntheticTextures(Dataset):
    """num_images texture mosaics of `size` px; classes = the first `num_classes` TEXTURES."""

    def __init__(
        self,
        num_images: int = 512,
        size: int = 64,
        num_classes: int = 4,
        seed: int = 0,
        transform=None,
        indices: list[int] | None = None,
    ) -> None:
        if not 2 <= num_classes <= len(TEXTURES):
            raise ValueError(f"data.num_classes={num_classes}: the synthetic set has 2..{len(TEXTURES)} textures")
        self.size, self.num_classes, self.seed = size, num_classes, seed
        self.ids = list(range(num_images)) if indices is None else list(indices)
        self.classes = list(TEXTURES[:num_classes])
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return make_image(self.seed, self.ids[i], self.size, self.num_classes)

    def __getitem__(self, i: int) -> dict:
        image, mask = self.load(i)
        if self.transform is not None:
            image, mask = apply(self.transform, image, mask)
        return {"image": image, "mask": mask, "index": i}
