"""Folder dataset: images/<id>.jpg|png, masks/<id>.png (class index, 255 = ignore), classes.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from misseg.data.transforms import apply

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DatasetError(ValueError):
    """A dataset on disk is missing or malformed; the message names the path and what to do."""


def read_classes(root: Path) -> list[str]:
    path = root / "classes.txt"
    if not path.is_file():
        raise DatasetError(f"{path}: missing. A folder dataset needs classes.txt (one class name per line).")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise DatasetError(f"{path}: lists {len(names)} class(es); at least 2 are needed.")
    return names


def list_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs sorted by id; every image needs its mask."""
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise DatasetError(
            f"{images_dir}: not found. Point data.root at a folder with images/, masks/ and classes.txt "
            "(for COCO, make one with `python -m misseg.data.prepare`)."
        )
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"{images_dir}: holds no .jpg/.jpeg/.png image.")
    missing = [p.name for p in images if not (masks_dir / f"{p.stem}.png").is_file()]
    if missing:
        raise DatasetError(
            f"{masks_dir}: no mask for {len(missing)} image(s), e.g. {missing[:3]}; "
            "each images/<id>.* needs masks/<id>.png."
        )
    return [(p, masks_dir / f"{p.stem}.png") for p in images]


def load_image(path: Path) -> torch.Tensor:
    """Any mode (L, RGBA, P, CMYK), EXIF-rotated -> (3, H, W) uint8 RGB."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()


def load_mask(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim != 2:
        raise DatasetError(f"{path}: mask has shape {arr.shape}; masks must be single-channel class-index PNGs.")
    return torch.from_numpy(arr.astype(np.uint8))


class FolderDataset(Dataset):
    """Returns {"image": (3, h, w) float, "mask": (h, w) int64, "index": int} after `transform`."""

    def __init__(self, root: str | Path, transform=None, indices: list[int] | None = None) -> None:
        self.root = Path(root)
        pairs = list_pairs(self.root)
        self.classes = read_classes(self.root)
        self.pairs = pairs if indices is None else [pairs[i] for i in indices]
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
