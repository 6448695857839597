"""The local features L a probe reads, for every misseg method, in one place."""

from __future__ import annotations

import torch
from torch import nn


def local_features(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """L = C(inputs(x)): (B, 3, H, W) normalised images -> (B, P, U, V), the encoder's output before any head.

    Both methods name their network `module.model` with `.inputs` (Sobel or identity) and `.encoder` (C);
    MI's forward also returns H and IIC's the cluster logits, which a probe on L must not see.
    """
    net = module.model
    return net.encoder(net.inputs(x))
