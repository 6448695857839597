"""Lightning callbacks that keep a run honest: stop on a non-finite loss before NaN weights reach a checkpoint."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from misseg.errors import NonFiniteLossError


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
