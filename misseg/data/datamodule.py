"""LightningDataModules: the folder dataset and the built-in synthetic textures share one class."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from misseg.data.folder import FolderDataset
from misseg.data.synthetic import SyntheticTextures
from misseg.data.transforms import eval_transform, train_transform


class SegmentationDataModule(pl.LightningDataModule):
    """Train view: (resize) + random crop + flip + colour jitter. Eval view: (resize) + centre crop.

    split="transductive": train and evaluate on the same unlabeled images (IIC's protocol).
    split="holdout": a seeded random `val_fraction` of the images is held out for evaluation only.
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
        if split not in ("transductive", "holdout"):
            raise ValueError(f"data.split={split!r}: use 'transductive' or 'holdout'")
        self.image_size, self.resize_shorter = image_size, resize_shorter
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.split, self.val_fraction, self.seed = num_workers, split, val_fraction, seed
        self.augment = dict(augment or {})
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
            train_transform(self.image_size, self.resize_shorter, **self.augment), train_idx
        )
        self.val_set = self.make_dataset(eval_transform(self.image_size, self.resize_shorter), val_idx)

    def _loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
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
    def __init__(self, root: str, **kwargs) -> None:
        self.root = Path(root).expanduser()
        super().__init__(**kwargs)

    def make_dataset(self, transform=None, indices=None) -> FolderDataset:
        return FolderDataset(self.root, transform, indices)


class SyntheticDataModule(SegmentationDataModule):
    def __init__(self, num_images: int = 512, native_size: int = 64, num_classes: int = 4, **kwargs) -> None:
        self.synthetic = dict(num_images=num_images, size=native_size, num_classes=num_classes)
        super().__init__(**kwargs)

    def make_dataset(self, transform=None, indices=None) -> SyntheticTextures:
        return SyntheticTextures(**self.synthetic, seed=self.seed, transform=transform, indices=indices)
