"""Lightning glue shared by every trained method: evaluation, prediction for figures, optimizer, checkpoints.

A method subclasses `SegmentationModule`, builds its network from the parts it is given (conf/model/ groups),
implements `predict` and `training_step` (its loss) and nothing else; validation is the same code for all
methods (one Hungarian/majority metric on the whole-set confusion matrix), so their numbers are comparable by
construction.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from misseg.metrics import MATCHINGS
from misseg.metrics.segmentation import HungarianSegmentationMetric
from misseg.models.backbone import BackboneError
from misseg.runs.errors import ConfigError


def resolve_classes(K: int | None, num_classes: int | None) -> tuple[int, int]:
    """K: clusters (None = the number of classes of the data); num_classes: ground-truth classes (None = K)."""
    K = K or num_classes
    if K is None:
        raise ValueError("model.K is not set and the data gives no number of classes: set model.K")
    return K, num_classes or K


class SegmentationModule(pl.LightningModule):
    """Base class. Subclasses save hyperparameters lr, weight_decay, matching, ignore_in_loss, K, num_classes
    (save_hyperparameters) and call `init_evaluation`."""

    # the composed model config (conf/model/), set by misseg.lit.build.build_module and stored in every checkpoint,
    # so a checkpoint path alone rebuilds the module (misseg.lit.build.load_module)
    model_config: dict | None = None

    def init_evaluation(self, num_pred: int, num_classes: int, matching: str = "hungarian") -> None:
        """num_pred: clusters predicted (K); num_classes: ground-truth classes; matching: hungarian|majority."""
        if matching not in MATCHINGS:
            raise ValueError(f"matching={matching!r}: use 'hungarian' (one-to-one) or 'majority' (many-to-one)")
        self.val_metric = HungarianSegmentationMetric(num_pred, num_classes, matching=matching)
        self.last_eval: dict | None = None

    def setup(self, stage: str) -> None:
        # before Lightning restores a checkpoint (resume), so a resumed run keeps its trained weights
        if stage == "fit":
            self.load_initial_weights()

    def load_initial_weights(self) -> None:
        """The weights files the config names, as training starts; the rest stays as drawn. Also evaluate
        init=initial's reference: what training started from. A missing or mismatched file is one line, exit 2."""
        try:
            self.load_weights_files()
        except BackboneError as e:  # models import no glue: their user errors become misseg's here
            raise ConfigError(str(e)) from None

    def load_weights_files(self) -> None:
        """model.encoder.weights into the encoder (methods with more networks add theirs)."""
        weights = getattr(self.model.encoder, "weights", None)
        if weights:
            self.model.encoder.load_weights(weights)

    def valid_pixels(self, batch: dict) -> torch.Tensor | None:
        """Pixels that take part in the loss: all, or with model.ignore_in_loss those not labelled 255 (COCO-Stuff
        things; the only use of labels in training)."""
        return batch["mask"] != 255 if self.hparams.ignore_in_loss else None

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
        lr = self.hparams.lr
        encoder = getattr(self.model, "encoder", None)
        slow = encoder.slow_parameters() if hasattr(encoder, "slow_parameters") else []
        ids = {id(p) for p in slow}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids]}]
        if slow:  # the trained stages of a pretrained body (models/backbone.py): their own, lower lr, from their start
            stage_lr, start = lr * encoder.stage_lr_scale, encoder.stage_start
            group = {"params": slow, "lr": 0.0 if start else stage_lr, "stage_lr": stage_lr, "stage_start": start}
            groups.append(group)
        return torch.optim.Adam(groups, lr=lr, weight_decay=self.hparams.weight_decay)

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        # the trained stages' lr is 0 before their stage_start: a function of the step alone, so a resumed run sets it
        # the same way; with lr 0 Adam leaves them unchanged (its moments still follow their gradients)
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                if group.get("stage_start"):
                    group["lr"] = group["stage_lr"] if self.global_step >= group["stage_start"] else 0.0

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # lets misseg.lit.build.load_module rebuild the right class, with its parts, from a checkpoint path alone
        checkpoint["misseg_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.model_config is not None:
            checkpoint["misseg_model"] = self.model_config
