"""Joint image/mask transforms (torchvision.transforms.v2): the mask follows every geometric op (nearest)."""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255


class ResizeShorter(torch.nn.Module):
    """Resize so the shorter side is `size`: image bilinear (antialiased), mask NEAREST_EXACT.

    v2.Resize uses legacy NEAREST for masks, which samples half a pixel off the bilinear image grid;
    nearest-exact keeps both on the same pixel centres (tested in tests/test_data.py).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        image = v2.functional.resize(image, self.size, antialias=True)
        mask = v2.functional.resize(mask, self.size, interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return image, mask


class PadTo(torch.nn.Module):
    """Pad both sides symmetrically up to `size` x `size` (image 0, mask 255 = ignore); no-op when large enough.

    v2.CenterCrop pads masks with 0, which is a real class: images smaller than the crop (e.g. COCO pre-scaled
    by 0.33, shorter side 119..127 px) would get fake class-0 borders in evaluation.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        h, w = image.shape[-2:]
        dh, dw = max(0, self.size - h), max(0, self.size - w)
        if dh == 0 and dw == 0:
            return image, mask
        pad = [dw // 2, dh // 2, dw - dw // 2, dh - dh // 2]  # left, top, right, bottom
        return v2.functional.pad(image, pad, fill=0), v2.functional.pad(mask, pad, fill=IGNORE_INDEX)


def train_transform(
    image_size: int,
    resize_shorter: int | None = None,
    flip: bool = True,
    jitter: float = 0.4,
    hue: float = 0.1,
    to_float: bool = True,
) -> v2.Compose:
    """Resize shorter side (optional) -> random crop -> horizontal flip -> colour jitter -> normalise.

    jitter sets brightness, contrast and saturation strength together (one key to sweep); hue apart.
    to_float=False stops at the flip and returns uint8 images, for colour work done per batch on the device
    (data.augment.on_device, misseg.data.batch_augment).
    """
    ops: list = []
    if resize_shorter:
        ops.append(ResizeShorter(resize_shorter))
    ops.append(v2.RandomCrop(image_size, pad_if_needed=True, fill={tv_tensors.Mask: 255, "others": 0}))
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    if jitter > 0 or hue > 0:
        ops.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=hue))
    return v2.Compose(ops + (_to_float() if to_float else []))


def eval_transform(image_size: int, resize_shorter: int | None = None) -> v2.Compose:
    """Resize shorter side (optional) -> centre crop -> normalise. Deterministic."""
    ops: list = []
    if resize_shorter:
        ops.append(ResizeShorter(resize_shorter))
    ops += [PadTo(image_size), v2.CenterCrop(image_size)]
    return v2.Compose(ops + _to_float())


def _to_float() -> list:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]


def apply(transform: v2.Compose, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image: (3, H, W) uint8, mask: (H, W) uint8 -> (3, h, w) float, (h, w) int64 with 255 = ignore."""
    img, m = transform(tv_tensors.Image(image), tv_tensors.Mask(mask[None]))
    return img.as_subclass(torch.Tensor), m.as_subclass(torch.Tensor)[0].long()


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) normalised -> (B, 3, H, W) in [0, 1], for figures."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x[:, :3] * std + mean).clamp(0, 1)
