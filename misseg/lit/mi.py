"""LightningModule of the thesis's method: the segmenter built from its parts, trained on the MI objective."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from misseg.data.augment import jittered_flipped_view
from misseg.lit.base import SegmentationModule, resolve_classes
from misseg.models import ENCODER_BODY_NEEDS
from misseg.models.backbone import BackboneError, EncoderBody, TimmBackbone
from misseg.models.encoder import LocalEncoder
from misseg.models.heads import HighLevelHeads
from misseg.models.segmenter import MISegmenter, predict_from_probs
from misseg.models.sobel import SobelInput
from misseg.objectives.mi import MIObjective, soft_assignment
from misseg.objectives.views import roll


def crf_targets(
    x: torch.Tensor, L: torch.Tensor, H: torch.Tensor, tau: float, valid: torch.Tensor | None
) -> torch.Tensor:
    """The method's own prediction on images x (normalised), refined by the dense CRF as evaluate crf=true refines
    it: its argmax (B, H, W), 255 where pixels take no part in the loss. No gradient: a label, not a function of the
    weights (model.objective.crf_target_weight)."""
    from misseg.diagnostics.evaluation import refine

    with torch.no_grad():
        # per row of H (every centre where the heads over-cluster), the rows the cross-entropy's logits have
        _, _, p = predict_from_probs(soft_assignment(L.detach(), H.detach(), tau), x.shape[-2:])
        targets, _ = refine(x, p, crf=True)
    return targets if valid is None else targets.masked_fill(~valid, 255)


class MISegModule(SegmentationModule):
    """Unsupervised segmenter trained by maximizing the JSD MI bound between L and S (thesis ch. 4).

    encoder: builds C as encoder(in_channels=, P=, d=) (conf/model/encoder/: thesis, timm, ...);
    heads: builds F_1..F_K as heads(K=, P=) (conf/model/heads/); objective: builds the loss as objective(tau=)
    (conf/model/objective/mi.yaml, with its levers). Hydra passes them as partials; the defaults are the thesis's.
    reference: builds the correspondence lever's frozen network as reference(in_channels=, P=None, d=)
    (conf/model/reference/); None = a copy of C at its initial weights.
    K: clusters (None = number of classes of the data); tau: None = 1/sqrt(P) (paper); sobel: RGB + Sobel input;
    ignore_in_loss: label 255 removes pixels from the loss (COCO-Stuff things), the only use of labels in training.
    num_classes: ground-truth classes for evaluation (set from the data).
    channels_last / compile: speed options (BENCHMARKS.md); compile wraps only the forward call, so checkpoints
    keep their keys.
    """

    def __init__(
        self,
        encoder: Callable[..., nn.Module] = LocalEncoder,
        heads: Callable[..., nn.Module] = HighLevelHeads,
        objective: Callable[..., MIObjective] = MIObjective,
        reference: Callable[..., nn.Module] | None = None,
        K: int | None = None,
        P: int = 2048,
        d: int = 4,
        tau: float | None = None,
        sobel: bool = False,
        ignore_in_loss: bool = False,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        matching: str = "hungarian",
        channels_last: bool = False,
        compile: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        K, num_classes = resolve_classes(K, num_classes)
        self.save_hyperparameters(ignore=["encoder", "heads", "objective", "reference"])
        inputs = SobelInput(sobel)
        self.model = MISegmenter(inputs, encoder(in_channels=inputs.out_channels, P=P, d=d), heads(K=K, P=P), tau)
        self.objective = objective(tau=self.model.tau)
        # the correspondence lever reads its correspondences from a frozen network: a copy of the encoder at its
        # initial weights, or one of its own (STEGO's frozen backbone; experiments/scale/correspondence.py measures
        # how often they join same-class patches). A registered module, so checkpoints and exact resume carry it.
        self.reference, self.own_reference = None, reference is not None
        if getattr(self.objective, "correspondence_weight", 0.0):
            if reference is not None:
                self.reference = reference(in_channels=inputs.out_channels, P=None, d=d)
            else:
                self.reference = copy.deepcopy(self.model.encoder)
            self.reference.requires_grad_(False)
            if isinstance(self.reference, EncoderBody):
                encoder = self.model.encoder
                if not (isinstance(encoder, TimmBackbone) and encoder.frozen):
                    raise BackboneError(ENCODER_BODY_NEEDS)
                encoder.keep_body = True
        self.init_evaluation(K, num_classes, matching)
        # a compiled function, not a compiled module: a module attribute would add keys to the state dict
        self._compiled = torch.compile(self.model.forward) if compile else None

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def load_weights_files(self) -> None:
        """The base's encoder weights, then the reference's: its own file, or the copy of the loaded encoder."""
        super().load_weights_files()
        if self.reference is None:
            return
        if self.own_reference:
            if getattr(self.reference, "weights", None):
                self.reference.load_weights(self.reference.weights)
        elif getattr(self.model.encoder, "weights", None):  # the copy starts from the encoder's weights
            self.reference.load_state_dict(self.model.encoder.state_dict())

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._compiled(x) if self._compiled is not None else self.model(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x, objective = batch["image"], self.objective
        L, H = self.features(x)
        # model/reference=encoder_body reads the first view's body features, kept before a second view's pass
        body = getattr(self.model.encoder, "kept_body", None)
        second = None
        if objective.views == 2:  # a second view made on the device: colour jitter + flip (undone on S)
            x2, flipped = jittered_flipped_view(
                x, objective.view_jitter, objective.view_hue, flip=objective.view_hflip, vflip=objective.view_vflip
            )
            moved = ()
            if objective.view_shift:  # ... moved by whole cells of L's grid, so that the objective can undo it exactly
                cell = torch.tensor([x.shape[-2] // L.shape[-2], x.shape[-1] // L.shape[-1]], device=x.device)
                shift = torch.randint(-objective.view_shift, objective.view_shift + 1, (x.shape[0], 2), device=x.device)
                x2, moved = roll(x2, shift * cell), (shift,)
            second = (*self.features(x2), flipped, *moved)
        reference = None
        if isinstance(self.reference, EncoderBody):
            reference = body
        elif self.reference is not None:
            self.reference.eval()  # here, not at init: Lightning warns of eval-mode modules, sets train mode per epoch
            with torch.no_grad():
                reference = self.reference(self.model.inputs(x))
            if reference.shape[-2:] != L.shape[-2:]:  # a reference of another stride: read on L's grid
                reference = F.interpolate(reference, size=L.shape[-2:], mode="bilinear", align_corners=False)
        valid = self.valid_pixels(batch)
        extra = {}  # passed only under the lever, so the objective's call is the thesis's otherwise
        if getattr(objective, "crf_target_weight", 0.0):  # self-training on its CRF-refined prediction, from its start
            extra["step"] = self.global_step
            if objective.crf_target_on(self.global_step):
                extra["targets"] = crf_targets(x, L, H, self.model.tau, valid)
        out = objective(L, H, valid, second, reference, **extra)
        kmeans_step = getattr(self.model.heads, "kmeans_step", None)
        logged = ("loss", "mi", "joint", "marginal", "entropy", "in_image", "correspondence", "crf_target")
        logged += ("critic_a", "critic_b")
        scalars = {f"train/{k}": out[k] for k in logged if k in out}
        if kmeans_step is not None:  # centroid heads (models/centroids.py): their K-means step, after the loss
            step = kmeans_step(L, valid, self.model.tau)
            if step is not None:  # how far the centres moved and how many were thrown away: label-free readings
                scalars["train/centroid_shift"] = step.shift
                scalars["train/centroid_reseeds"] = step.reseeds.float()
        self.log_dict(scalars, on_step=True, on_epoch=True, batch_size=L.shape[0])
        # the loss terms ride along (detached) for misseg.lit.callbacks.NonFiniteGuard's message
        return {"loss": out["loss"], **{k: out[k].detach() for k in ("joint", "marginal")}}

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L, H = self.features(x)
        return predict_from_probs(self.model.probs(L, H), x.shape[-2:])
