"""LightningModule: wires the segmenter, the MI objective and the Hungarian metric. No math here."""

from __future__ import annotations

import torch

from misseg.augment import jittered_flipped_view
from misseg.models.segmenter import MISegmenter, predict_from_features
from misseg.objectives.mi import MIObjective
from misseg.segmodule import SegmentationModule


class MISegModule(SegmentationModule):
    """Unsupervised segmenter trained by maximizing the JSD MI bound between L and S (thesis ch. 4).

    K: number of clusters (None = number of classes of the data). tau: None = 1/sqrt(P) (paper).
    negatives: "local" (this rank's batch) or "global" (gathered from all DDP ranks) for the JSD term.
    ignore_in_loss: mask label 255 removes pixels from the loss (COCO-Stuff things); labels are never
    used otherwise in training.
    entropy_weight, in_image_weight, views: levers beyond the thesis, off by default (MIObjective);
    region_heads, h_bottleneck: levers in the model, off by default (MISegmenter).
    num_classes: ground-truth classes for evaluation (set from the data).
    backbone: None (scratch encoder) or "timm:<name>"; backbone_weights: a local file loaded when training
    starts (not when a checkpoint is loaded for inference, which holds the weights already).
    channels_last / compile: speed options (BENCHMARKS.md); bf16 autocast is Lightning's
    trainer.precision=bf16-mixed. compile wraps only the forward call, so checkpoints keep their keys.
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
        negatives: str = "local",
        ignore_in_loss: bool = False,
        entropy_weight: float = 0.0,
        in_image_weight: float = 0.0,
        views: int = 1,
        region_heads: bool = False,
        h_bottleneck: int | None = None,
        view_jitter: float = 0.4,
        view_hue: float = 0.1,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        num_classes: int | None = None,
        matching: str = "hungarian",
        backbone: str | None = None,
        backbone_weights: str | None = None,
        freeze_backbone: bool = False,
        channels_last: bool = False,
        compile: bool = False,
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
            backbone=backbone,
            freeze_backbone=freeze_backbone,
            region_heads=region_heads,
            h_bottleneck=h_bottleneck,
        )
        if backbone_weights and not backbone:
            raise ValueError(f"model.backbone_weights={backbone_weights!r} needs model.backbone=timm:<name>")
        if views not in (1, 2):
            raise ValueError(f"model.views={views}: use 1 (the paper) or 2 (two augmented views per image)")
        self.objective = MIObjective(
            self.model.tau,
            detach_assignment,
            entropy_weight=entropy_weight,
            in_image_weight=in_image_weight,
            negatives=negatives,
        )
        self.init_evaluation(K, num_classes, matching)
        # a compiled function, not a compiled module: a module attribute would add keys to the state dict
        self._compiled = torch.compile(self.model.forward) if compile else None

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._compiled(x) if self._compiled is not None else self.model(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x)

    def setup(self, stage: str) -> None:
        # before Lightning restores a checkpoint (resume), so a resumed run keeps its trained weights
        if stage == "fit" and self.hparams.backbone_weights:
            self.model.load_backbone_weights(self.hparams.backbone_weights)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x = batch["image"]
        L, H = self.features(x)
        second = None
        if self.hparams.views == 2:  # a second view made on the device: colour jitter + flip (undone on S)
            x2, flipped = jittered_flipped_view(x, self.hparams.view_jitter, self.hparams.view_hue)
            second = (*self.features(x2), flipped)
        valid = batch["mask"] != 255 if self.hparams.ignore_in_loss else None
        out = self.objective(L, H, valid, second)
        logged = ("loss", "mi", "joint", "marginal", "entropy", "in_image")
        self.log_dict(
            {f"train/{k}": out[k] for k in logged if k in out},
            on_step=True,
            on_epoch=True,
            batch_size=L.shape[0],
        )
        # the loss terms ride along (detached) for misseg.callbacks.NonFiniteGuard's message
        return {"loss": out["loss"], **{k: out[k].detach() for k in ("joint", "marginal")}}

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L, H = self.features(x)
        return predict_from_features(L, H, self.model.tau, x.shape[-2:])
