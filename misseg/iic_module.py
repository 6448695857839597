"""LightningModule for IIC (Ji et al. 2019) on misseg's backbone and data: the baseline of the thesis's tables."""

from __future__ import annotations

import torch

from misseg.augment import jittered_flipped_view, unflip
from misseg.models.iic import IICSegmenter, predict_from_logits
from misseg.objectives.iic import iic_segmentation_loss
from misseg.objectives.mi import pool_valid
from misseg.segmodule import SegmentationModule


class IICSegModule(SegmentationModule):
    """Invariant Information Clustering for segmentation, evaluated by the same metric code as MISegModule.

    Two views per image: the batch's image and, made on the device in the training step, a colour-jittered
    (`jitter`, `hue`) and randomly horizontally flipped copy (`flip`); the flip is undone on the second
    view's output so both are in one spatial frame. The loss is IIC's dense MI between the per-pixel
    cluster distributions of the two views at displacements up to `T` (in feature-grid units, or input
    pixels with `loss_at_input_size`), weighted by `lamb`. `K_over`: an optional over-clustering head
    trained jointly (loss summed; IIC alternates the heads by epoch), not used for prediction.

    tau, head_width, head_shared_layers, head_pool, detach_assignment, views, view_jitter, view_hue: keys of
    the MI method that the shared experiment configs set; accepted and ignored (IIC always trains on two
    views, set by `jitter`, `hue`, `flip`), so `experiment=X model=iic` composes.
    """

    def __init__(
        self,
        K: int | None = None,
        K_over: int | None = None,
        T: int = 1,
        lamb: float = 1.0,
        P: int = 256,
        d: int = 4,
        sobel: bool = False,
        encoder_depth: int = 4,
        encoder_width: int = 64,
        encoder_max_width: int = 512,
        kernel: int = 3,
        jitter: float = 0.4,
        hue: float = 0.1,
        flip: bool = True,
        loss_at_input_size: bool = False,
        ignore_in_loss: bool = False,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        num_classes: int | None = None,
        matching: str = "hungarian",
        tau: float | None = None,
        head_width: int | None = None,
        head_shared_layers: int | None = None,
        head_pool: int | None = None,
        detach_assignment: bool | None = None,
        views: int | None = None,
        view_jitter: float | None = None,
        view_hue: float | None = None,
    ) -> None:
        super().__init__()
        K = K or num_classes
        if K is None:
            raise ValueError("model.K is not set and the data gives no number of classes: set model.K")
        if T < 0:
            raise ValueError(f"model.T={T}: the displacement half-width must be >= 0")
        num_classes = num_classes or K
        self.save_hyperparameters()
        self.model = IICSegmenter(K, K_over, P, d, sobel, encoder_depth, encoder_width, encoder_max_width, kernel)
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
        hp = self.hparams
        x = batch["image"]
        x2, flipped = jittered_flipped_view(x, hp.jitter, hp.hue, hp.flip)
        out = self.model(torch.cat([x, x2]))  # one pass over both views
        size = x.shape[-2:] if hp.loss_at_input_size else None
        p1, p2 = self.two_view_probs(out["logits"], flipped, size)
        valid = None
        if hp.ignore_in_loss:
            valid = pool_valid(batch["mask"] != 255, p1.shape[-2:])
        main = iic_segmentation_loss(p1, p2, hp.T, hp.lamb, valid)
        loss, logs = main["loss"], {"train/loss_main": main["loss"], "train/mi": main["mi"]}
        if "logits_over" in out:
            q1, q2 = self.two_view_probs(out["logits_over"], flipped, size)
            over = iic_segmentation_loss(q1, q2, hp.T, hp.lamb, valid)
            loss = loss + over["loss"]
            logs.update({"train/loss_over": over["loss"], "train/mi_over": over["mi"]})
        logs["train/loss"] = loss
        self.log_dict(logs, on_step=True, on_epoch=True, prog_bar=False, batch_size=x.shape[0])
        return loss
