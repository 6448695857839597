"""LightningDataModules: the folder dataset and the built-in synthetic textures share one class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from misseg.data.batch_augment import augment_batch
from misseg.data.cache import CACHE_DIR, CachedFolderDataset
from misseg.data.folder import FolderDataset
from misseg.data.scan import BadFilesError, bad_files_message, read_class_names, scan_folder
from misseg.data.synthetic import SyntheticTextures
from misseg.data.transforms import eval_transform, train_transform
from misseg.runs.errors import ConfigError, DatasetError


def with_val_set(datamodule: Any) -> Any:
    """The datamodule with its evaluation set built: trainer.validate builds it, and every pass that reads the
    evaluation images before or instead of it (CRF scoring, the probes, BatchNorm calibration, the report) calls
    this first, so setup("validate") runs once."""
    if not hasattr(datamodule, "val_set"):
        datamodule.setup("validate")
    return datamodule


class SegmentationDataModule(pl.LightningDataModule):
    """Train view: (resize) + random crop + flip + colour jitter. Eval view: (resize) + centre crop.

    augment: {flip, jitter, hue, on_device}. on_device=true: the loader workers only crop and flip (uint8),
    and the colour jitter + normalisation run once per batch on the training device after the transfer
    (misseg.data.batch_augment: kornia's ColorJitter, torchvision's formulas batched, HSV hue shift included).

    split="transductive": train and evaluate on the same unlabeled images (IIC's protocol).
    split="holdout": a seeded random `val_fraction` of the images is held out for evaluation only.
    split="lists": fixed split from root/splits/{train,val}.txt (folder data; e.g. COCO-Stuff-27).
    """

    def __init__(
        self,
        image_size: int = 64,
        resize_shorter: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        split: str = "transductive",
        val_fraction: float = 0.2,
        seed: int = 0,
        augment: dict | None = None,
        drop_last: bool = True,
    ) -> None:
        super().__init__()
        if split not in ("transductive", "holdout", "lists"):
            raise ValueError(f"data.split={split!r}: use 'transductive', 'holdout' or 'lists'")
        self.image_size, self.resize_shorter = image_size, resize_shorter
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.split, self.val_fraction, self.seed = num_workers, split, val_fraction, seed
        self.augment = dict(augment or {})
        self.augment_on_device = bool(self.augment.pop("on_device", False))
        self.drop_last = drop_last
        scan = self.make_dataset()  # scans the data now: bad paths fail before any compute
        self.num_images, self.classes = len(scan), list(scan.classes)

    # subclasses: the dataset (all images) for a transform and an optional index subset
    def make_dataset(self, transform=None, indices: list[int] | None = None) -> Dataset:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_indices(self) -> tuple[list[int], list[int]]:
        n = self.num_images
        if self.split == "transductive":
            return list(range(n)), list(range(n))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        n_val = max(1, int(round(self.val_fraction * n)))
        return sorted(perm[n_val:]), sorted(perm[:n_val])

    def setup(self, stage: str | None = None) -> None:
        train_idx, val_idx = self.split_indices()
        self.train_set = self.make_dataset(
            train_transform(self.image_size, self.resize_shorter, **self._per_sample_augment()), train_idx
        )
        self.val_set = self.make_dataset(eval_transform(self.image_size, self.resize_shorter), val_idx)

    def _per_sample_augment(self) -> dict:
        if not self.augment_on_device:
            return self.augment
        return {**self.augment, "jitter": 0.0, "hue": 0.0, "to_float": False}

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if self.augment_on_device and batch["image"].dtype == torch.uint8:  # training batches only
            jitter, hue = self.augment.get("jitter", 0.4), self.augment.get("hue", 0.1)
            batch["image"] = augment_batch(batch["image"], jitter, hue)
            if self.trainer is not None:  # Lightning cast the inputs before the transfer, when they were uint8
                batch = self.trainer.precision_plugin.convert_input(batch)
        return batch

    def _loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        sampler = None
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if not train and 1 < world <= len(dataset):  # (fewer images than ranks: Lightning's padding sampler)
            # every image exactly once over the ranks: Lightning's default DistributedSampler pads the set
            # with repeats to a multiple of the world size, which would count those images twice in the
            # whole-set confusion matrix. Lightning keeps a DistributedSampler it is given.
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            sampler=sampler,
            drop_last=train and self.drop_last and len(dataset) >= batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, train=False)


class FolderDataModule(SegmentationDataModule):
    """cache=true reads root/cache/ (misseg/data/cache.py, checked on open) instead of decoding images/ and masks/.
    prepare_hint: the command that makes this dataset, added to the error when it is missing.
    on_bad_file: "stop" (default) raises one error listing every bad file the start-up scan finds;
    "skip" trains without them (`skipped` lists them). `ignored` lists the files of images/ and masks/ that
    are not images / PNG masks (notes.txt, .DS_Store): never read, reported by misseg.train.
    verify_files=false only pairs file names (fast,
    for large trusted sets); a corrupt file then fails when it is read."""

    def __init__(
        self,
        root: str,
        cache: bool = False,
        prepare_hint: str | None = None,
        on_bad_file: str = "stop",
        verify_files: bool = True,
        **kwargs,
    ) -> None:
        if on_bad_file not in ("stop", "skip"):
            raise ConfigError(f"data.on_bad_file={on_bad_file!r}: use 'stop' or 'skip'")
        self.root = Path(root).expanduser()
        self.cache = cache
        self.pairs, self.skipped, self.ignored = None, [], []
        try:
            if not cache:
                self._scan(on_bad_file, verify_files, kwargs)
            super().__init__(**kwargs)
        except DatasetError as e:
            if not prepare_hint or (self.root / "images").is_dir():  # the hint is for a dataset not made yet
                raise
            raise DatasetError(f"{self.root}: no prepared dataset here; make it with: {prepare_hint}  ({e})") from None

    def _scan(self, on_bad_file: str, verify_files: bool, kwargs: dict) -> None:
        report = scan_folder(self.root, len(read_class_names(self.root)), verify_files=verify_files)
        if report.bad and on_bad_file == "stop":
            raise BadFilesError(bad_files_message(self.root, report.bad), report.bad)
        if len(report.pairs) < 2:
            raise DatasetError(
                f"data.root={self.root}: {len(report.pairs)} usable image(s) after skipping "
                f"{len(report.bad)} bad file(s); training needs at least 2."
            )
        self.pairs, self.skipped, self.ignored = report.pairs, report.bad, report.ignored
        resize_shorter, image_size = kwargs.get("resize_shorter"), kwargs.get("image_size", 64)
        if not resize_shorter and report.min_side is not None and image_size > report.min_side:
            raise ConfigError(
                f"data.image_size={image_size}: larger than the shorter side of {report.min_side_path} "
                f"({report.min_side} px, the smallest); set data.image_size <= {report.min_side} or "
                f"data.resize_shorter >= {image_size}"
            )

    def make_dataset(self, transform=None, indices=None) -> FolderDataset | CachedFolderDataset:
        if self.cache:
            return CachedFolderDataset(self.root / CACHE_DIR, transform, indices)
        return FolderDataset(self.root, transform, indices, pairs=self.pairs)

    def split_indices(self) -> tuple[list[int], list[int]]:
        if self.split != "lists":
            return super().split_indices()
        return split_from_lists(self.root, self.make_dataset().ids)


def split_from_lists(root: Path, ids: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the ids listed in root/splits/train.txt and root/splits/val.txt (one id per line)."""
    position = {id_: i for i, id_ in enumerate(ids)}
    out = []
    for name in ("train", "val"):
        path = root / "splits" / f"{name}.txt"
        if not path.is_file():
            raise DatasetError(f"{path}: not found; data.split=lists needs splits/train.txt and splits/val.txt.")
        listed = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        unknown = [id_ for id_ in listed if id_ not in position]
        if unknown:
            raise DatasetError(f"{path}: {len(unknown)} id(s) without an image, e.g. {unknown[:3]}.")
        out.append(sorted(position[id_] for id_ in listed))
    return out[0], out[1]


class SyntheticDataModule(SegmentationDataModule):
    def __init__(self, num_images: int = 512, native_size: int = 64, num_classes: int = 4, **kwargs) -> None:
        self.synthetic = dict(num_images=num_images, size=native_size, num_classes=num_classes)
        super().__init__(**kwargs)

    def make_dataset(self, transform=None, indices=None) -> SyntheticTextures:
        return SyntheticTextures(**self.synthetic, seed=self.seed, transform=transform, indices=indices)
