"""LightningModule for IIC (Ji et al. 2019) on misseg's encoder and data: the baseline of the thesis's tables."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from misseg.data.augment import jittered_flipped_view
from misseg.lit.base import SegmentationModule, resolve_classes
from misseg.models.encoder import LocalEncoder
from misseg.models.iic import IICSegmenter, predict_from_logits
from misseg.models.sobel import SobelInput
from misseg.objectives.iic import IICObjective
from misseg.objectives.mi import pool_valid
from misseg.objectives.views import unflip


class IICSegModule(SegmentationModule):
    """Invariant Information Clustering for segmentation, evaluated by the same metric code as MISegModule.

    Two views per image: the batch's image and, made on the device in the training step, a colour-jittered and
    randomly flipped copy (objective.jitter, .hue, .flip); the flip is undone on the second view's output so both
    are in one spatial frame. The loss (objective, conf/model/objective/iic.yaml) is IIC's dense MI between the
    per-pixel cluster distributions of the two views. K_over: an optional over-clustering head trained jointly
    (loss summed; IIC alternates the heads by epoch), not used for prediction. encoder: as in MISegModule.
    """

    def __init__(
        self,
        encoder: Callable[..., nn.Module] = LocalEncoder,
        objective: IICObjective | None = None,
        K: int | None = None,
        K_over: int | None = None,
        P: int = 256,
        d: int = 4,
        sobel: bool = False,
        ignore_in_loss: bool = False,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        matching: str = "hungarian",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        K, num_classes = resolve_classes(K, num_classes)
        self.save_hyperparameters(ignore=["encoder", "objective"])
        inputs = SobelInput(sobel)
        self.model = IICSegmenter(inputs, encoder(in_channels=inputs.out_channels, P=P, d=d), K, K_over)
        self.objective = objective or IICObjective()
        self.init_evaluation(K, num_classes, matching)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(x)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return predict_from_logits(self.model(x)["logits"], x.shape[-2:])

    def two_view_probs(self, logits: torch.Tensor, flipped: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
        """(2B, K, U, V) logits of [view 1; view 2] -> aligned (p1, p2), optionally at input size."""
        p = torch.softmax(logits, dim=1)
        if size is not None:
            p = torch.nn.functional.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
        p1, p2 = p.chunk(2)
        return p1, unflip(p2, flipped)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        objective, x = self.objective, batch["image"]
        x2, flipped = jittered_flipped_view(x, objective.jitter, objective.hue, objective.flip, vflip=objective.vflip)
        out = self.model(torch.cat([x, x2]))  # one pass over both views
        size = x.shape[-2:] if objective.loss_at_input_size else None
        p1, p2 = self.two_view_probs(out["logits"], flipped, size)
        valid = self.valid_pixels(batch)
        valid = None if valid is None else pool_valid(valid, p1.shape[-2:])
        main = objective(p1, p2, valid)
        loss, logs = main["loss"], {"train/loss_main": main["loss"], "train/mi": main["mi"]}
        if "logits_over" in out:
            q1, q2 = self.two_view_probs(out["logits_over"], flipped, size)
            over = objective(q1, q2, valid)
            loss = loss + over["loss"]
            logs.update({"train/loss_over": over["loss"], "train/mi_over": over["mi"]})
        logs["train/loss"] = loss
        self.log_dict(logs, on_step=True, on_epoch=True, prog_bar=False, batch_size=x.shape[0])
        return loss
