"""Checkpoints that survive kills: atomic writes, RNG state for exact resume, last.ckpt every epoch and on SIGTERM."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from misseg.runs.resume import LAST_NAME


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file next to the target, fsync, then os.replace: a kill at any moment
    leaves either the old or the new checkpoint, never a truncated one.

    Lightning's own _atomic_save writes through fsspec's transaction, whose temporary file lives in the
    system temp dir: when that is another filesystem than the run dir (local /tmp vs a cluster's shared
    disk) the final move is a copy, which a kill can cut short, and nothing is fsynced.
    Loading defaults to weights_only=True: checkpoints are untrusted input (they hold only tensors and
    plain Python values, see tests/test_robustness.py).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote storage: fsspec's transaction is the atomic primitive there
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only: bool | None = None):
        return super().load_checkpoint(path, map_location, True if weights_only is None else weights_only)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX within one filesystem: tmp is in the same directory
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; best effort (not every filesystem allows fsync on a directory)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


class RNGStateCheckpoint(pl.Callback):
    """Saves the torch / numpy / python RNG states in every checkpoint and restores them on resume.

    Lightning does not: a resumed run would draw a different shuffle order and different augmentations
    than the uninterrupted run. States are stored as tensors and plain values (weights_only=True loads them).
    """

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_state = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])],
            "python": [py_state[0], list(py_state[1]), py_state[2]],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        name, keys, *rest = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


class ResumeCheckpoint(ModelCheckpoint):
    """Keeps `dirpath/last.ckpt` fresh for `ckpt_path=last`: Lightning's ModelCheckpoint with no monitor,
    writing `last.ckpt` at the end of every training epoch (after validation, so the state of any monitored
    checkpoint is current) and on SIGTERM.

    Lightning 2.6.6 does all of it except one thing: its `save_on_exception=True` saves on *every* exception.
    misseg's NonFiniteGuard stops a diverging run with an exception after the bad step; saving then would
    overwrite the last good `last.ckpt` with the state of that step (NonFiniteGuard.on_save_checkpoint refuses
    NaN weights, but a NaN loss with still-finite weights would be written). So `on_exception` saves only for
    SIGTERMException (SLURM sends SIGTERM before preemption: Lightning's signal connector raises it after the
    current batch; the entry point turns it into a one-line message and exit status 143).

    `save_last` is not used for this: Lightning 2.6's ModelCheckpoint(save_last=True, monitor=...) rewrites
    last.ckpt only in epochs where a top-k checkpoint is saved, i.e. when the monitored metric improves, so a
    run killed at epoch 50 could resume from epoch 3.
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=Path(LAST_NAME).stem,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=1,
            save_on_train_epoch_end=True,  # after the epoch's validation; also when there is no validation
            save_on_exception=True,
            enable_version_counter=False,  # always last.ckpt, never last-v1.ckpt next to a resumed one
        )
        self.sigterm_step: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.dirpath) / LAST_NAME

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        _flush_loggers(trainer)  # first: once the checkpoint is visible, the history up to it is on disk too
        super()._save_checkpoint(trainer, filepath)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _flush_loggers(trainer)  # the previous epoch's epoch-level rows, logged after its checkpoint

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.sigterm_step = trainer.global_step
            super().on_exception(trainer, pl_module, exception)


def _flush_loggers(trainer: pl.Trainer) -> None:
    """Write the loggers' buffered rows (CSVLogger keeps up to 100 steps in memory): after a kill -9 the
    metrics.csv history then reaches the checkpoint a resume starts from (misseg.lit.loggers keeps it)."""
    for logger in trainer.loggers:
        logger.save()
