"""Lightning callbacks: stop on a non-finite loss before NaN weights reach a checkpoint; a progress bar that
shows the loss, the MI estimate and the real number of epochs."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import RichProgressBar, TQDMProgressBar

from misseg.runs.errors import NonFiniteLossError


def _format_terms(terms: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k}={float(v):.6g}" for k, v in terms.items())


def loss_terms(outputs: Any) -> dict[str, torch.Tensor]:
    """The scalar tensors of a training_step output: {"loss": t} or {"loss": t, "mi": t, ...}."""
    if isinstance(outputs, torch.Tensor):
        return {"loss": outputs}
    if isinstance(outputs, dict):
        return {k: v for k, v in outputs.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
    return {}


class NonFiniteGuard(pl.Callback):
    """Raises NonFiniteLossError naming the step and the loss terms when a training loss is NaN/inf.

    Two checks, so no checkpoint ever holds NaN weights:
    - after every training batch, the loss terms (one host sync on a few scalars per step; Lightning
      orders ModelCheckpoint after this callback, so the raise comes before any save of that step);
    - before every checkpoint write, the floating-point weights (a finite loss can still produce an
      inf gradient and NaN weights in the optimizer step).
    The previous checkpoint files are left untouched.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        terms = loss_terms(outputs)
        if not terms:
            return
        values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        bad = not bool(torch.isfinite(values).all())
        # DDP: every rank stops together (a rank raising alone would leave the others waiting in all-reduce)
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            raise NonFiniteLossError(
                f"non-finite loss at step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx}): "
                f"{_format_terms(terms)}. Training stopped; the last good checkpoint is kept. "
                "Try a lower model.lr or check the data."
            )

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        bad = [
            name
            for name, t in checkpoint.get("state_dict", {}).items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())
        ]
        if bad:
            raise NonFiniteLossError(
                f"non-finite weights at step {trainer.global_step} (e.g. {', '.join(bad[:3])}): not saving this "
                "checkpoint; the last good one is kept. Try a lower model.lr or check the data."
            )


# ---------------------------------------------------------------- progress bar


def planned_epochs(
    max_epochs: int | None, max_steps: int | None, batches_per_epoch: float, accumulate: int = 1
) -> int | None:
    """Epochs the run will train: max_epochs, or fewer when max_steps (optimizer steps) ends it first;
    None when neither bounds it. Lightning steps the optimizer at an epoch's end even on a partial
    accumulation, hence the ceil."""
    limits = []
    if max_epochs is not None and max_epochs >= 0:
        limits.append(max_epochs)
    if max_steps is not None and max_steps >= 0 and 0 < batches_per_epoch < float("inf"):
        steps_per_epoch = math.ceil(batches_per_epoch / max(1, accumulate))
        limits.append(math.ceil(max_steps / steps_per_epoch))
    return min(limits) if limits else None


def bar_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """loss and MI estimate of the latest step (train/loss, train/mi: logged by every misseg module)."""
    out = {}
    for name, keys in (("loss", ("train/loss_step", "train/loss")), ("mi", ("train/mi_step", "train/mi"))):
        value = next((metrics[k] for k in keys if k in metrics), None)
        if value is not None:
            out[name] = f"{float(value):.4g}"
    return out


class _RealEpochs:
    """Mixin: "Epoch 3/10" counts from 1 to the real number of epochs (max_steps included), and the bar
    shows the loss and the MI estimate instead of Lightning's version number."""

    def epoch_description(self, trainer: pl.Trainer, current_epoch: int) -> str:
        total = planned_epochs(
            trainer.max_epochs, trainer.max_steps, trainer.num_training_batches, trainer.accumulate_grad_batches
        )
        return f"Epoch {current_epoch + 1}" + (f"/{total}" if total else "")

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        items = super().get_metrics(trainer, pl_module)  # type: ignore[misc]
        items.pop("v_num", None)
        return {**items, **bar_metrics(trainer.callback_metrics)}


class EpochTQDMProgressBar(_RealEpochs, TQDMProgressBar):
    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(self.epoch_description(trainer, trainer.current_epoch))


class EpochRichProgressBar(_RealEpochs, RichProgressBar):
    def _get_train_description(self, current_epoch: int) -> str:
        text = self.epoch_description(self.trainer, current_epoch)
        return f"{text:{len(self.validation_description)}}"  # padded as Lightning does (no flicker)


def progress_bars(enabled: bool) -> list[pl.Callback]:
    """The training progress bar (Rich when installed, as Lightning chooses, else tqdm); [] when disabled
    (Lightning refuses a progress bar callback with enable_progress_bar=false)."""
    if not enabled:
        return []
    try:
        return [EpochRichProgressBar()]
    except ModuleNotFoundError:  # rich is optional
        return [EpochTQDMProgressBar()]
