"""Compact uint8 cache of a folder dataset, so that training decodes no JPEG/PNG.

Layout of DIR/cache/ (written by `python -m misseg.data.prepare cache --root DIR` or `prepare ... --cache`):
  images.u8   every image as (3, H, W) uint8 bytes, concatenated (one flat file, read with np.memmap)
  masks.u8    every mask as (H, W) uint8 bytes, concatenated in the same order
  index.npz   ids (N,), shapes (N, 2) = (H, W), offsets (N,) = pixel offset of image i (images.u8 holds
              3 bytes per pixel, masks.u8 one), so images of any size share one memmap
  meta.json   format version, classes, count, byte sizes
The images are the folder's (already pre-scaled) images, decoded once; reading one back is a slice + copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from misseg.data.folder import DatasetError, FolderDataset, read_classes
from misseg.data.transforms import apply

CACHE_DIR = "cache"
FORMAT_VERSION = 1


def write_cache(root: str | Path, out: str | Path | None = None) -> Path:
    """Decode every image/mask pair of the folder dataset at `root` once into out (default root/cache)."""
    root = Path(root)
    out = Path(out) if out is not None else root / CACHE_DIR
    dataset = FolderDataset(root)
    out.mkdir(parents=True, exist_ok=True)
    n = len(dataset)
    shapes = np.zeros((n, 2), np.int64)
    offsets = np.zeros(n, np.int64)
    pos = 0
    # written to temporary names and renamed at the end: an interrupted run leaves no half cache that loads
    with open(out / "images.u8.tmp", "wb") as fi, open(out / "masks.u8.tmp", "wb") as fm:
        for i in range(n):
            image, mask = dataset.load(i)
            h, w = mask.shape
            shapes[i], offsets[i] = (h, w), pos
            fi.write(image.numpy().tobytes())
            fm.write(mask.numpy().tobytes())
            pos += h * w
    ids = np.array([p.stem for p, _ in dataset.pairs])
    np.savez(out / "index.npz", ids=ids, shapes=shapes, offsets=offsets)
    os.replace(out / "images.u8.tmp", out / "images.u8")
    os.replace(out / "masks.u8.tmp", out / "masks.u8")
    meta = {"format": FORMAT_VERSION, "classes": dataset.classes, "count": n, "pixels": int(pos),
            "source": str(root.resolve())}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


class CachedFolderDataset(Dataset):
    """Same items as FolderDataset ({"image", "mask", "index"}), read from a cache written by write_cache."""

    def __init__(self, cache_dir: str | Path, transform=None, indices: list[int] | None = None) -> None:
        self.dir = Path(cache_dir)
        hint = f"write it with `python -m misseg.data.prepare cache --root {self.dir.parent}`"
        meta_path = self.dir / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{meta_path}: not found (data.cache=true needs a cache); {hint}.")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise DatasetError(f"{meta_path}: cache format {meta.get('format')}, expected {FORMAT_VERSION}; {hint}.")
        with np.load(self.dir / "index.npz") as index:
            self.all_ids = [str(s) for s in index["ids"]]
            self.shapes, self.offsets = index["shapes"], index["offsets"]
        for name, per_pixel in (("images.u8", 3), ("masks.u8", 1)):
            size = (self.dir / name).stat().st_size if (self.dir / name).is_file() else -1
            if size != per_pixel * meta["pixels"]:
                raise DatasetError(f"{self.dir / name}: {size} bytes, index says {per_pixel * meta['pixels']}; {hint}.")
        self.classes = list(meta["classes"])
        folder_classes = self.dir.parent / "classes.txt"
        if folder_classes.is_file() and read_classes(self.dir.parent) != self.classes:
            raise DatasetError(f"{folder_classes}: differs from the classes in {meta_path}: stale cache, {hint}.")
        self.rows = list(range(len(self.all_ids))) if indices is None else list(indices)
        self.ids = [self.all_ids[r] for r in self.rows]
        self.transform = transform
        self._images: np.memmap | None = None  # opened lazily: each DataLoader worker maps the files itself
        self._masks: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:  # never pickle the maps (pickling a memmap copies its data)
        return {**self.__dict__, "_images": None, "_masks": None}

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._images is None:
            self._images = np.memmap(self.dir / "images.u8", np.uint8, mode="r")
            self._masks = np.memmap(self.dir / "masks.u8", np.uint8, mode="r")
        r = self.rows[i]
        (h, w), off = self.shapes[r], int(self.offsets[r])
        image = np.array(self._images[3 * off : 3 * (off + h * w)]).reshape(3, h, w)
        mask = np.array(self._masks[off : off + h * w]).reshape(h, w)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def __getitem__(self, i: int) -> dict:
        image, mask = self.load(i)
        if self.transform is not None:
            image, mask = apply(self.transform, image, mask)
        return {"image": image, "mask": mask, "index": i}
