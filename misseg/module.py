"""LightningModule: wires the segmenter, the MI objective and the Hungarian metric. No math here."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from misseg.metrics.segmentation import HungarianSegmentationMetric
from misseg.models.segmenter import MISegmenter, predict_from_features
from misseg.objectives.mi import MIObjective


class MISegModule(pl.LightningModule):
    """Unsupervised segmenter trained by maximizing the JSD MI bound between L and S (thesis ch. 4).

    K: number of clusters (None = number of classes of the data). tau: None = 1/sqrt(P) (paper).
    ignore_in_loss: mask label 255 removes pixels from the loss (COCO-Stuff things); labels are never
    used otherwise in training. num_classes: ground-truth classes for evaluation (set from the data).
    """

    def __init__(
        self,
        K: int | None = None,
        P: int = 2048,
        d: int = 4,
        tau: float | None = None,
        sobel: bool = False,
        encoder_depth: int = 4,
        encoder_width: int = 64,
        encoder_max_width: int = 512,
        kernel: int = 3,
        head_width: int = 64,
        head_shared_layers: int = 1,
        head_pool: int = 4,
        detach_assignment: bool = False,
        ignore_in_loss: bool = False,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        num_classes: int | None = None,
        matching: str = "hungarian",
    ) -> None:
        super().__init__()
        K = K or num_classes
        if K is None:
            raise ValueError("model.K is not set and the data gives no number of classes: set model.K")
        num_classes = num_classes or K
        self.save_hyperparameters()
        self.model = MISegmenter(
            K,
            P,
            d,
            tau,
            sobel,
            encoder_depth,
            encoder_width,
            encoder_max_width,
            kernel,
            head_width,
            head_shared_layers,
            head_pool,
        )
        self.objective = MIObjective(self.model.tau, detach_assignment)
        self.val_metric = HungarianSegmentationMetric(K, num_classes, matching=matching)
        self.last_eval: dict | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x)

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        L, H = self.model(batch["image"])
        valid = batch["mask"] != 255 if self.hparams.ignore_in_loss else None
        out = self.objective(L, H, valid)
        self.log_dict(
            {
                "train/loss": out["loss"],
                "train/mi": out["mi"],
                "train/joint": out["joint"],
                "train/marginal": out["marginal"],
            },
            on_step=True,
            on_epoch=True,
            prog_bar=False,
            batch_size=L.shape[0],
        )
        # the loss terms ride along (detached) for misseg.callbacks.NonFiniteGuard's message
        return {"loss": out["loss"], **{k: out[k].detach() for k in ("joint", "marginal")}}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        L, H = self.model(batch["image"])
        classes, _, _ = predict_from_features(L, H, self.model.tau, batch["image"].shape[-2:])
        self.val_metric.update(classes, batch["mask"])

    def on_validation_epoch_end(self) -> None:
        result = self.val_metric.compute()
        self.val_metric.reset()
        self.log_dict({"val/pa": result["pa"], "val/miou": result["miou"]}, sync_dist=False)
        self.last_eval = result

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
