"""Training augmentation for batches of cached uint8 images, run on the batch's device in a few tensor ops.

The per-sample torchvision pipeline (misseg.data.transforms.train_transform) costs milliseconds per image
on a CPU worker. When images are already decoded (a uint8 cache or array), the crop/flip is a slice in
the dataset and the colour jitter + normalisation run here once per batch, on the GPU when there is one.
The colour jitter is misseg.data.augment.color_jitter (kornia's batched port of torchvision's ColorJitter), so
`data.augment.on_device=true` draws from the same per-image distribution as the worker path.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from misseg.data.augment import color_jitter
from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def augment_batch(
    images: torch.Tensor,
    jitter: float = 0.4,
    hue: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (B, 3, H, W) float32 jittered and ImageNet-normalised, on images' device.

    jitter: brightness, contrast and saturation strength (as in train_transform); hue: max hue shift in
    turns (0.1 = +-36 degrees). The jitter is misseg.data.augment.color_jitter (one implementation for the
    second views and for cached batches); a `generator` makes the draw reproducible.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"augment_batch expects (B, 3, H, W) uint8 images, got {images.dtype} {tuple(images.shape)}")
    x = images.float().div_(255.0)
    if jitter > 0 or hue > 0:
        x = color_jitter(x, jitter, jitter, jitter, hue, generator)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class UInt8CropDataset(Dataset):
    """Random crop + horizontal flip of in-memory uint8 images by slicing; colour work is left to augment_batch.

    images: (N, 3, H, W) uint8, masks: (N, H, W) uint8, H and W >= size.
    Returns {"image": (3, size, size) uint8, "mask": (size, size) int64, "index": i}.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, size: int, flip: bool = True) -> None:
        if images.dtype != torch.uint8 or images.shape[-2] < size or images.shape[-1] < size:
            raise ValueError(f"UInt8CropDataset needs uint8 images of at least {size} px, got {tuple(images.shape)}")
        self.images, self.masks, self.size, self.flip = images, masks, size, flip

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        H, W = self.images.shape[-2:]
        top = int(torch.randint(0, H - self.size + 1, ()))
        left = int(torch.randint(0, W - self.size + 1, ()))
        image = self.images[i, :, top : top + self.size, left : left + self.size]
        mask = self.masks[i, top : top + self.size, left : left + self.size]
        if self.flip and torch.rand(()) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return {"image": image.contiguous(), "mask": mask.long(), "index": i}
