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


@torch.no_grad()
def calibrate_batchnorm(module: nn.Module, images) -> int:
    """Reset the encoder's BatchNorm running statistics and measure them on `images` (an iterable of normalised
    (B, 3, H, W) batches; no labels): each BatchNorm's mean and variance become the equal-weight average over the
    batches (momentum None). Returns the number of BatchNorm layers measured.

    Why: a freshly drawn deep network evaluated with BatchNorm's initial statistics (mean 0, variance 1) passes
    whatever scale its random convolutions produce from block to block, so a low random-init reference could be low
    for that reason alone; the data's statistics, which a trained network's BatchNorm holds, are the check, and
    measuring them reads no label (evaluate init=random init_batchnorm=data; experiments/scale section 47: on the
    frozen EfficientNet-Lite0 they probe lower than the drawn ones on four sets, so those stay the reference).
    """
    norms = [m for m in module.model.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch weighs the same
        m.train()
    try:
        for x in images:
            local_features(module, x)  # every BatchNorm on the path updates its statistics; the output is unused
    finally:
        for m, (momentum, training) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.train(training)
    return len(norms)
