"""Folder dataset: images/<id>.<jpg|jpeg|png|bmp|tif|tiff|webp>, masks/<id>.png (class index, 255 = ignore),
classes.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from misseg.data.images import IMAGE_SUFFIXES, rgb_array
from misseg.data.scan import bad_files_message, pair_files, read_class_names
from misseg.data.transforms import apply
from misseg.runs.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "DatasetError", "FolderDataset", "list_pairs", "load_image", "load_mask", "read_classes"]


def read_classes(root: Path) -> list[str]:
    return read_class_names(root)


def list_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs sorted by id; every image needs its mask (the full check is misseg.data.scan)."""
    pairs, bad = pair_files(root)
    bad = [b for b in bad if b.path.parent.name == "images"]  # a mask without an image is harmless here
    if bad:
        raise DatasetError(bad_files_message(root, bad))
    return pairs


def load_image(path: Path) -> torch.Tensor:
    """Any mode (L, RGBA, P, CMYK, 16-bit), EXIF-rotated -> (3, H, W) uint8 RGB, decoded as misseg.predict does."""
    return torch.from_numpy(rgb_array(path)).permute(2, 0, 1).contiguous()


def load_mask(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim != 2:
        raise DatasetError(f"{path}: mask has shape {arr.shape}; masks must be single-channel class-index PNGs.")
    return torch.from_numpy(arr.astype(np.uint8))


class FolderDataset(Dataset):
    """Returns {"image": (3, h, w) float, "mask": (h, w) int64, "index": int} after `transform`."""

    def __init__(
        self,
        root: str | Path,
        transform=None,
        indices: list[int] | None = None,
        pairs: list[tuple[Path, Path]] | None = None,
    ) -> None:
        """pairs: the (image, mask) files from a start-up scan (misseg.data.scan); None lists root again."""
        self.root = Path(root)
        pairs = list_pairs(self.root) if pairs is None else pairs
        self.classes = read_classes(self.root)
        self.pairs = pairs if indices is None else [pairs[i] for i in indices]
        self.ids = [image.stem for image, _ in self.pairs]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.pairs[i]
        image, mask = load_image(image_path), load_mask(mask_path)
        if image.shape[1:] != mask.shape:
            raise DatasetError(
                f"{mask_path}: mask is {tuple(mask.shape)} (H, W) but {image_path.name} is "
                f"{tuple(image.shape[1:])}; masks must have the size of their image."
            )
        return image, mask

    def __getitem__(self, i: int) -> dict:
        image, mask = self.load(i)
        if self.transform is not None:
            image, mask = apply(self.transform, image, mask)
        return {"image": image, "mask": mask, "index": i}
