"""Lightning glue shared by every trained method: evaluation, prediction for figures, optimizer, checkpoints.

A method subclasses `SegmentationModule`, builds its network, implements `predict` and `training_step`,
and calls `init_evaluation`; validation is then the same code for all methods (one Hungarian/majority
metric on the whole-set confusion matrix), so their numbers are comparable by construction.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from misseg.metrics.segmentation import HungarianSegmentationMetric

DEFAULT_CLASS = "misseg.module.MISegModule"  # checkpoints written before the class was recorded


class SegmentationModule(pl.LightningModule):
    """Base class. Subclasses set hparams lr / weight_decay (save_hyperparameters) and implement predict."""

    def init_evaluation(self, num_pred: int, num_classes: int, matching: str = "hungarian") -> None:
        """num_pred: clusters predicted (K); num_classes: ground-truth classes; matching: hungarian|majority."""
        if matching not in ("hungarian", "majority"):
            raise ValueError(f"matching={matching!r}: use 'hungarian' (one-to-one) or 'majority' (many-to-one)")
        self.val_metric = HungarianSegmentationMetric(num_pred, num_classes, matching=matching)
        self.last_eval: dict | None = None

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) -> class map (B, H, W) long, confidence (B, H, W), probabilities (B, K, H, W)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode class and confidence maps on the CPU, for any input device (used by the report)."""
        was_training = self.training
        self.eval()
        try:
            classes, confidence, _ = self.predict(x.to(self.device))
        finally:
            self.train(was_training)
        return classes.cpu(), confidence.cpu()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        classes, _, _ = self.predict(batch["image"])
        self.val_metric.update(classes, batch["mask"])

    def on_validation_epoch_end(self) -> None:
        result = self.val_metric.compute()
        self.val_metric.reset()
        self.log_dict({"val/pa": result["pa"], "val/miou": result["miou"]}, sync_dist=False)
        self.last_eval = result

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # lets misseg.evaluate.load_module rebuild the right class from a checkpoint path alone
        checkpoint["misseg_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
