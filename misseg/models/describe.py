"""What an encoder is: its parameter count and its receptive field, measured on the module itself.

The receptive field is read off the gradient: the input pixels whose value changes the centre vector of L at
all (non-zero gradient of L[:, :, u0, v0].sum()), in eval mode, so dilations, pooling and padding are counted
without a formula. Two readings:
- structural: on a copy whose every path is open (positive conv weights, identity BatchNorm, average instead of
  max pooling, ReLU instead of ReLU6, a positive input): the extent the architecture allows;
- at init: the weights as built. The two differ when an initialisation closes paths, e.g. timm's ResNets start
  with the last BatchNorm of every residual block at zero, so at init L sees only the stem and the shortcuts.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _all_paths_open(encoder: nn.Module) -> nn.Module:
    net = copy.deepcopy(encoder).double()
    for name, m in list(net.named_modules()):
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.constant_(m.weight, 1.0 / m.weight[0].numel())
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()  # running mean 0, var 1, weight 1, bias 0: the identity in eval mode
        elif isinstance(m, nn.MaxPool2d | nn.ReLU6) and name:
            # max pooling passes one input; ReLU6 (EfficientNet-Lite, MobileNet) closes every path once the
            # all-positive activations pass 6
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            opened = nn.ReLU() if isinstance(m, nn.ReLU6) else None
            opened = opened or nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
            setattr(parent, name.rpartition(".")[2], opened)
    return net


def receptive_field(encoder: nn.Module, in_channels: int = 3, size: int = 128, structural: bool = True) -> int:
    """Side in pixels of the input square that the centre vector of L = encoder(x) depends on."""
    net = _all_paths_open(encoder) if structural else encoder
    was_training = net.training
    net.eval()
    try:
        dtype = torch.float64 if structural else torch.float32
        x = (torch.rand if structural else torch.randn)(1, in_channels, size, size, dtype=dtype)
        x.requires_grad_(True)
        with torch.enable_grad():
            L = net(x)
            u0, v0 = L.shape[-2] // 2, L.shape[-1] // 2
            L[:, :, u0, v0].sum().backward()
    finally:
        net.train(was_training)
    touched = x.grad.abs().sum((0, 1)) > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    if not len(rows):  # every path closed (e.g. saturated activations at init): L's centre sees no pixel
        return 0
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)


def describe(module: nn.Module, size: int = 128) -> str:
    """One line for a method's network: encoder class, parameters, receptive field, and the rest's parameters."""
    model = module.model
    encoder, inputs = model.encoder, model.inputs
    net = nn.Sequential(inputs, encoder)
    rf, rf_init = receptive_field(net, 3, size), receptive_field(net, 3, size, structural=False)
    at_init = "" if rf_init == rf else f", {rf_init} px at init"
    enc_params = count_parameters(encoder)
    rest = count_parameters(model) - enc_params
    return (
        f"encoder C: {type(encoder).__name__}, {enc_params / 1e6:.2f}M parameters, receptive field {rf} px"
        f"{at_init} (of a {size} px input), stride {encoder.d}; heads: {rest / 1e6:.3g}M parameters"
    )
