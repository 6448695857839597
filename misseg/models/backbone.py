"""Pretrained-backbone option: a timm network in place of the scratch encoder C, giving L: (B, P, H/d, W/d).

`model/encoder=timm model.encoder.name=<name>` builds the timm model with features_only=True and random init
(nothing is downloaded at run time), takes its deepest feature map whose stride equals `model.d`, and maps it to
P channels with a linear 1x1 conv (no BN/ReLU, as in the scratch encoder, so L can take any sign).
Self-supervised weights (e.g. DINO) come from a local file: `model.encoder.weights=PATH`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# wrappers that checkpoints of self-supervised methods put around the backbone's own keys
_STRIP_PREFIXES = ("module.", "teacher.", "student.", "backbone.", "encoder.", "model.")
_NESTED_KEYS = ("state_dict", "model", "teacher", "student", "backbone")


class BackboneError(ValueError):
    """A bad backbone name, stride or weights file; the message names the key/path and what to do."""


def create_timm_features(name: str, in_channels: int, **extra) -> nn.Module:
    """timm model with features_only=True, random init. ViTs get dynamic_img_size so any H, W works."""
    import timm  # optional dependency (pip install misseg[backbones]); imported only when asked for

    kwargs = dict(pretrained=False, features_only=True, in_chans=in_channels, **extra)
    try:
        return timm.create_model(name, dynamic_img_size=True, **kwargs)
    except TypeError:  # CNNs take any size already and reject the ViT-only argument
        return timm.create_model(name, **kwargs)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise BackboneError(
                f"model.encoder.name={name}: timm has no model {name!r} "
                "(list them with python -c \"import timm; print(timm.list_models('*resnet*'))\")"
            ) from e
        raise


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt/.bin (torch.save) or .safetensors file, unwrapped from common containers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"model.encoder.weights={str(path)!r}: file not found (absolute: {path.resolve()}). Nothing is "
            "downloaded at run time: fetch the weights on a machine with internet (e.g. DINO's "
            "dino_resnet50_pretrain.pth or a timm model's model.safetensors from the Hugging Face Hub) and put "
            f"the file at {path.resolve()}, or point model.encoder.weights at where it is; "
            "or set model.encoder.weights=null to start from random init."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for _ in range(3):  # e.g. {"teacher": {...}} or {"state_dict": {"model": {...}}}
        if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            nested = [k for k in _NESTED_KEYS if isinstance(state.get(k), dict)]
            if not nested:
                break
            state = state[nested[0]]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"model.encoder.weights={str(path)!r}: holds no state dict of tensors")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def match_keys(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `source` keys to the `target` model's: strip wrapper prefixes, then add timm's own ("model.")."""
    renamed = {}
    for key, value in source.items():
        stripped = key
        while stripped.startswith(_STRIP_PREFIXES):
            stripped = stripped.split(".", 1)[1]
        for candidate in (key, stripped, f"model.{stripped}"):
            if candidate in target:
                renamed[candidate] = value
                break
    return renamed


class TimmBackbone(nn.Module):
    """x: (B, C_in, H, W) -> L: (B, P, H/d, W/d) from the deepest timm feature map of stride d."""

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        P: int = 2048,
        d: int = 8,
        freeze: bool = False,
        weights: str | None = None,
        stride: int | None = None,
    ) -> None:
        super().__init__()
        # stride: the preset's own output stride (e.g. 8 for a ResNet, whose stride-4 map is one block deep);
        # None = model.d. The method reads the stride of L from the encoder (self.d), so the two cannot disagree.
        d = stride or d
        self.name, self.weights = name, weights
        self.body = create_timm_features(name, in_channels)
        strides = list(self.body.feature_info.reduction())
        levels = [i for i, s in enumerate(strides) if s == d]
        if not levels:
            raise BackboneError(
                f"model.d={d}: timm {name} has feature maps of stride {sorted(set(strides))} only; "
                f"set model.d to one of them (larger = deeper, more semantic features, coarser L)"
            )
        self.level = levels[-1]  # the deepest of that stride (a ViT has all its blocks at stride 16)
        if self.level < len(strides) - 1:  # rebuild without the deeper stages: no compute or weights wasted
            out_index = self.body.feature_info.out_indices[self.level]
            self.body, self.level = create_timm_features(name, in_channels, out_indices=(out_index,)), 0
        channels = self.body.feature_info.channels()[self.level]
        self.project = nn.Conv2d(channels, P, kernel_size=1)
        self.P, self.d, self.frozen = P, d, freeze
        if freeze:
            self.body.requires_grad_(False)
            self.body.eval()

    def train(self, mode: bool = True) -> TimmBackbone:
        super().train(mode)
        if self.frozen:  # a frozen backbone keeps its BatchNorm statistics too
            self.body.eval()
        return self

    def load_weights(self, path: str | Path) -> None:
        """Load a local state dict into the timm body; every body parameter must be found in the file."""
        own = self.body.state_dict()
        state = match_keys(own, read_state_dict(path))
        if not state:
            raise BackboneError(
                f"model.encoder.weights={str(path)!r}: none of its keys matches timm:{self.name} "
                f"(file keys e.g. {list(read_state_dict(path))[:3]}, model keys e.g. {list(own)[:3]}); "
                "is it the weights of that architecture?"
            )
        wrong = [
            f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in state.items()
            if v.shape != own[k].shape
        ]
        missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
        if wrong or missing:
            raise BackboneError(
                f"model.encoder.weights={str(path)!r} does not fit timm:{self.name}: "
                f"{len(wrong)} shape mismatch(es) {wrong[:3]}, {len(missing)} missing key(s) {missing[:3]} "
                "(with model.sobel=true the first conv has 5 input channels: use model.sobel=false)"
            )
        self.body.load_state_dict(state, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.body(x)[self.level])
