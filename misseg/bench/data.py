"""Training data pipeline throughput: JPEG decode + per-sample augmentation vs decoded-cache paths."""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from misseg.data.batch_augment import UInt8CropDataset, augment_batch
from misseg.data.folder import FolderDataset
from misseg.data.transforms import train_transform


def has_cache_module() -> bool:
    """misseg.data.cache (the decoded uint8 cache of folder datasets) is part of this checkout."""
    return importlib.util.find_spec("misseg.data.cache") is not None


def preload_uint8(root: Path, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image resized (shorter side) and centre-cropped to side x side: (N, 3, s, s), (N, s, s) uint8."""
    folder = FolderDataset(root)
    images, masks = [], []
    for i in range(len(folder)):
        image, mask = folder.load(i)
        image = v2.functional.center_crop(v2.functional.resize(image, side, antialias=True), side)
        mask = v2.functional.resize(mask[None], side, interpolation=v2.InterpolationMode.NEAREST_EXACT)
        images.append(image)
        masks.append(v2.functional.center_crop(mask, side)[0])
    return torch.stack(images), torch.stack(masks)


def images_per_s(
    dataset: Dataset, batch_size: int, num_workers: int, batches: int, device: torch.device, on_batch=None
) -> float:
    """Images/s over `batches` batches after the first (worker start-up excluded), incl. `on_batch`."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True,
                        persistent_workers=False, pin_memory=device.type == "cuda")  # fmt: skip
    it = iter(loader)
    n, t = 0, 0.0
    for b in range(batches + 1):
        if b == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
        batch = next(it, None)
        if batch is None:  # a new epoch when the set is smaller than the measurement
            it = iter(loader)
            batch = next(it)
        x = batch["image"].to(device, non_blocking=True)
        if on_batch is not None:
            x = on_batch(x)
        if b >= 1:
            n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def bench_data(root: Path, image_size: int, batch_size: int, batches: int, workers: tuple[int, ...],
               device: torch.device) -> dict:  # fmt: skip
    """Rows {path, num_workers, images_per_s}; 'cache' uses misseg.data.cache when this checkout has it."""
    rows, notes = [], []
    transform = train_transform(image_size)
    jpeg = FolderDataset(root, transform)
    for w in workers:
        rows.append({"path": "jpeg: decode + per-sample v2 augment", "num_workers": w,
                     "images_per_s": images_per_s(jpeg, batch_size, w, batches, device)})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if has_cache_module():
            from misseg.data.cache import CachedFolderDataset, write_cache

            cache_dir = write_cache(root, Path(tmp) / "cache")
            cached = CachedFolderDataset(cache_dir, transform)
            for w in workers:
                rows.append({"path": "cache: misseg.data.cache + per-sample v2 augment", "num_workers": w,
                             "images_per_s": images_per_s(cached, batch_size, w, batches, device)})  # fmt: skip
            # what data.cache=true data.augment.on_device=true trains on: workers crop/flip uint8, the
            # datamodule's on_after_batch_transfer jitters + normalises the batch on the device
            crop_only = CachedFolderDataset(cache_dir, train_transform(image_size, jitter=0, hue=0, to_float=False))
            for w in workers:
                rate = images_per_s(crop_only, batch_size, w, batches, device, augment_batch)
                rows.append({"path": "cache + uint8 crop/flip + batched device jitter (data.augment.on_device)",
                             "num_workers": w, "images_per_s": rate})  # fmt: skip
        else:
            notes.append("misseg.data.cache is not in this checkout: the cache row is the in-memory uint8 array only")
        side = image_size + image_size // 8  # room for the random crop
        images, masks = preload_uint8(root, side)
        memory = UInt8CropDataset(images, masks, image_size)
        for w in workers:  # no generator: training draws from the global RNG, as timed here
            rate = images_per_s(memory, batch_size, w, batches, device, augment_batch)
            rows.append({"path": f"uint8 array ({side} px) + crop/flip slice + batched device jitter",
                         "num_workers": w, "images_per_s": rate})  # fmt: skip
    return {"rows": rows, "notes": notes, "root": str(root), "image_size": image_size, "batch_size": batch_size,
            "batches": batches}  # fmt: skip
