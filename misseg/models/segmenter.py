"""The segmenter: input channels -> C -> L, F_1..F_K -> H, and the class map predicted from (L, H)."""

from __future__ import annotations

import torch
from torch import nn

from misseg.models.backbone import TimmBackbone, parse_backbone
from misseg.models.encoder import LocalEncoder
from misseg.models.heads import HighLevelHeads
from misseg.models.sobel import SobelInput
from misseg.objectives.mi import region_conditioned, soft_assignment


class MISegmenter(nn.Module):
    """x: (B, 3, H, W) -> L: (B, P, U, V), H: (B, K, P).

    backbone: None = the thesis's scratch encoder; "timm:<name>" = a timm network (misseg/models/backbone.py)
    with its stride-d feature map projected to P, frozen when freeze_backbone. Its weights are loaded by
    load_backbone_weights (random init otherwise).
    region_heads, h_bottleneck: levers beyond the thesis (off by default): H_k conditioned on the region it
    claims (objectives.mi.region_conditioned), and a `h_bottleneck`-dim bottleneck in each F_k (heads.py).
    """

    def __init__(
        self,
        K: int,
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
        backbone: str | None = None,
        freeze_backbone: bool = False,
        region_heads: bool = False,
        h_bottleneck: int | None = None,
    ) -> None:
        super().__init__()
        self.inputs = SobelInput(sobel)
        if backbone:
            self.encoder = TimmBackbone(parse_backbone(backbone), self.inputs.out_channels, P, d, freeze_backbone)
        else:
            if freeze_backbone:
                raise ValueError("model.freeze_backbone=true needs model.backbone=timm:<name> (null = scratch encoder)")
            self.encoder = LocalEncoder(
                self.inputs.out_channels, P, d, encoder_depth, encoder_width, encoder_max_width, kernel
            )
        self.heads = HighLevelHeads(K, P, head_width, head_shared_layers, head_pool, h_bottleneck)
        self.region_heads = region_heads
        self.K, self.P, self.d = K, P, d
        self.tau = P**-0.5 if tau is None else float(tau)

    def load_backbone_weights(self, path: str) -> None:
        if not isinstance(self.encoder, TimmBackbone):
            raise ValueError(f"model.backbone_weights={path!r} is set but model.backbone is null: set model.backbone")
        self.encoder.load_weights(path)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.encoder(self.inputs(x))
        H = self.heads(L)
        return L, region_conditioned(L, H, self.tau) if self.region_heads else H

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class map (B, H, W) long, confidence map (B, H, W) and p' at input resolution (B, K, H, W)."""
        L, H = self(x)
        return predict_from_features(L, H, self.tau, x.shape[-2:])


def predict_from_features(
    L: torch.Tensor, H: torch.Tensor, tau: float, size: tuple[int, int] | torch.Size
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """p' upsampled bilinearly to `size`; argmax_k = class map, max_k = confidence map."""
    p = soft_assignment(L, H, tau)
    p = torch.nn.functional.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
    confidence, classes = p.max(dim=1)
    return classes, confidence, p
