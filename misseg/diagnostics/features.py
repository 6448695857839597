"""The local features L a probe reads, for every misseg method, in one place."""

from __future__ import annotations

import torch
from torch import nn


def has_body(module: nn.Module) -> bool:
    """Whether the encoder has a body before a projection (timm encoders: models/backbone.py)."""
    return hasattr(module.model.encoder, "body_features")


def local_features(module: nn.Module, x: torch.Tensor, layer: str = "L") -> torch.Tensor:
    """L = C(inputs(x)): (B, 3, H, W) normalised images -> (B, P, U, V), the encoder's output before any head.

    Both methods name their network `module.model` with `.inputs` (Sobel or identity) and `.encoder` (C);
    MI's forward also returns H and IIC's the cluster logits, which a probe on L must not see.
    layer="body": the timm body's map before its 1x1 projection (B, channels, U, V). Why: with a frozen body, L
    is a learned (or, untrained, a randomly drawn) linear map of it, and K-means on L depends on that draw; the
    body's own map is the reference no training or seed moves.
    """
    net = module.model
    if layer == "body":
        return net.encoder.body_features(net.inputs(x))
    return net.encoder(net.inputs(x))
