"""Pretrained-backbone option: a timm network in place of the scratch encoder C, giving L: (B, P, H/d, W/d).

`model/encoder=timm model.encoder.name=<name>` builds the timm model with features_only=True and random init
(nothing is downloaded at run time), takes its deepest feature map whose stride equals `model.d`, and maps it to
P channels with a linear 1x1 conv (no BN/ReLU, as in the scratch encoder, so L can take any sign).
Self-supervised weights (e.g. DINO) come from a local file: `model.encoder.weights=PATH`.

Two options make a pretrained body useful on small images (DeepLab's and STEGO's practice): `dilate` keeps the
deeper stages at the chosen stride with dilated convolutions instead of dropping them, so L is read from the
deepest, most semantic map; `upsample` enlarges the input first (a network trained on 224 px ImageNet objects
sees a 64 px crop's person at a size it knows). L's stride on the input is then stride / upsample. The input is
mapped from misseg's ImageNet normalisation to the one the network was trained with (timm's pretrained_cfg of
`name`, e.g. [-1, 1] for the TF EfficientNets, or `input_mean` / `input_std` for weights trained otherwise), so
pretrained weights see what they expect.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# the normalisation misseg's data applies (misseg.data.transforms; models import no data code, a test keeps them equal)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# wrappers that checkpoints of self-supervised methods put around the backbone's own keys
_STRIP_PREFIXES = ("module.", "teacher.", "student.", "backbone.", "encoder.", "model.")
_NESTED_KEYS = ("state_dict", "model", "teacher", "student", "backbone")


PROJECTIONS = ("linear", "mlp")  # the body's map -> L (TimmBackbone projection=...)


class BackboneError(ValueError):
    """A bad backbone name, stride or weights file; the message names the key/path and what to do."""


def body_stages(body: nn.Module) -> list[nn.Module]:
    """A timm feature body's stages in order: an EfficientNet's `blocks`, a ResNet's layer1..4; [] for others."""
    if isinstance(getattr(body, "blocks", None), nn.Sequential):
        return list(body.blocks.children())
    return [module for name, module in body.named_children() if name.startswith("layer")]


def create_timm_features(name: str, in_channels: int, key: str = "model.encoder", **extra) -> nn.Module:
    """timm model with features_only=True, random init. ViTs get dynamic_img_size so any H, W works. key: the
    config key `name` was given under, named in the error for an unknown model."""
    import timm  # optional dependency (pip install misseg[backbones]); imported only when asked for

    kwargs = dict(pretrained=False, features_only=True, in_chans=in_channels, **extra)
    try:
        return timm.create_model(name, dynamic_img_size=True, **kwargs)
    except TypeError:  # CNNs take any size already and reject the ViT-only argument
        return timm.create_model(name, **kwargs)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise BackboneError(
                f"{key}.name={name}: timm has no model {name!r} "
                "(list them with python -c \"import timm; print(timm.list_models('*resnet*'))\")"
            ) from e
        raise


def read_state_dict(path: str | Path, key: str = "model.encoder") -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt/.bin (torch.save) or .safetensors file, unwrapped from common containers.
    key: the config key the file was given under (`{key}.weights`), named in every error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"{key}.weights={str(path)!r}: file not found (absolute: {path.resolve()}). Nothing is "
            "downloaded at run time: fetch the weights on a machine with internet (e.g. DINO's "
            "dino_resnet50_pretrain.pth or a timm model's model.safetensors from the Hugging Face Hub) and put "
            f"the file at {path.resolve()}, or point {key}.weights at where it is; "
            f"or set {key}.weights=null to start from random init."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file fails in many ways (pickle, zip, KeyError): one line each
        raise BackboneError(
            f"{key}.weights={str(path)!r}: cannot be read as a torch.save or .safetensors state dict "
            f"({type(e).__name__}: {e}); is it a weights file, and complete?"
        ) from None
    for _ in range(3):  # e.g. {"teacher": {...}} or {"state_dict": {"model": {...}}}
        if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            nested = [k for k in _NESTED_KEYS if isinstance(state.get(k), dict)]
            if not nested:
                break
            state = state[nested[0]]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{key}.weights={str(path)!r}: holds no state dict of tensors")
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
    """x: (B, C_in, H, W) -> L: (B, P, H/d, W/d) from the deepest timm feature map of stride d * upsample.

    P: None = the body's own channels, no projection (the correspondence lever's frozen reference, lit/mi.py).
    key: the config key these settings live under (model.encoder, model.reference, kmeans.backbone), so that an
    error names the key the user set.
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        P: int | None = 2048,
        d: int = 8,
        freeze: bool = False,
        weights: str | None = None,
        stride: int | None = None,
        dilate: bool = False,
        upsample: int = 1,
        input_mean: tuple[float, ...] | None = None,
        input_std: tuple[float, ...] | None = None,
        key: str = "model.encoder",
        projection: str = "linear",
        trainable_stages: int = 0,
        stage_lr_scale: float = 0.1,
        stage_start: int = 0,
    ) -> None:
        super().__init__()
        # stride: the body's output stride (e.g. 8 for a ResNet, whose stride-4 map is one block deep); None =
        # model.d * upsample. The method reads the stride of L from the encoder (self.d), so the two cannot disagree.
        if upsample < 1:
            raise BackboneError(f"{key}.upsample={upsample}: must be a positive integer (1 = off)")
        if projection not in PROJECTIONS:
            raise BackboneError(f"{key}.projection={projection!r}: unknown; use one of {', '.join(PROJECTIONS)}")
        if projection != "linear" and P is None:  # a reference network: its body's map is read as is
            raise BackboneError(f"{key}.projection={projection}: this network has no projection; use linear")
        body_stride = stride or d * upsample
        if body_stride % upsample:
            raise BackboneError(
                f"{key}.stride={body_stride}, upsample={upsample}: the stride must be a multiple of upsample"
            )
        self.name, self.weights, self.upsample, self.key = name, weights, upsample, key
        extra = {"output_stride": body_stride} if dilate else {}
        try:
            self.body = create_timm_features(name, in_channels, key, **extra)
        except (TypeError, ValueError, AssertionError) as e:  # timm refuses the stride for this family
            if not extra or isinstance(e, BackboneError):
                raise
            raise BackboneError(
                f"{key}.dilate=true: timm {name} cannot dilate to stride {body_stride} ({e}); use {key}.dilate=false"
            ) from None
        strides = list(self.body.feature_info.reduction())
        if dilate:  # timm reports the undilated strides; the deeper stages now run at body_stride
            strides = [min(s, body_stride) for s in strides]
        levels = [i for i, s in enumerate(strides) if s == body_stride]
        if not levels:
            raise BackboneError(
                f"model.d={body_stride}: timm {name} has feature maps of stride {sorted(set(strides))} only; "
                f"set model.d to one of them (larger = deeper, more semantic features, coarser L), "
                f"or {key}.dilate=true to keep the deeper stages at that stride"
            )
        self.level = levels[-1]  # the deepest of that stride (a ViT has all its blocks at stride 16)
        if self.level < len(strides) - 1:  # rebuild without the deeper stages: no compute or weights wasted
            out_index = self.body.feature_info.out_indices[self.level]
            self.body = create_timm_features(name, in_channels, key, out_indices=(out_index,), **extra)
            self.level = 0
        channels = self.body.feature_info.channels()[self.level]
        self.project = nn.Conv2d(channels, P, kernel_size=1) if P is not None else nn.Identity()
        # projection="mlp": STEGO's segmentation head, the linear map plus a residual 1x1 MLP. Why: with a frozen
        # body a linear projection can only re-weight directions the body already has, so a linear probe on L can
        # never beat one on the body (README section 38 (c)); a nonlinear head can make new directions linear.
        self.project_mlp = None
        if projection == "mlp" and P is not None:
            self.project_mlp = nn.Sequential(
                nn.Conv2d(channels, channels, kernel_size=1), nn.ReLU(), nn.Conv2d(channels, P, kernel_size=1)
            )
        # frozen: the whole body fixed (what model/reference=encoder_body needs); fixed_bn: its BatchNorm statistics
        # fixed, also where the last stages train (batches of 16 would move them more than the weights)
        self.P, self.d = P or channels, body_stride // upsample
        self.frozen, self.fixed_bn = freeze and not trainable_stages, freeze
        # keep_body: forward keeps its body features in kept_body (detached), for model/reference=encoder_body
        self.keep_body, self.kept_body = False, None
        # ImageNet-normalised input -> the body's own normalisation: x * scale + shift per channel (identity for
        # networks trained with ImageNet statistics; not saved, so checkpoints keep their keys). input_mean/std:
        # the statistics the weights were trained with where they are not timm's default for `name` (e.g. DINO's
        # ImageNet statistics on a ViT whose timm default is [-1, 1])
        mean, std = _pretrained_normalization(name)
        mean, std = tuple(input_mean or mean), tuple(input_std or std)
        scale, shift = torch.ones(in_channels), torch.zeros(in_channels)
        scale[:3] = torch.tensor(IMAGENET_STD) / torch.tensor(std)
        shift[:3] = (torch.tensor(IMAGENET_MEAN) - torch.tensor(mean)) / torch.tensor(std)
        self.register_buffer("scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, -1, 1, 1), persistent=False)
        if freeze:
            self.body.requires_grad_(False)
            self.body.eval()
        if trainable_stages:
            # the last stages of a frozen body train (weights, BatchNorm affine); why: a frozen body caps what L can
            # hold (README section 38 (c)), and the deepest stages are the cheapest to train on a CPU (1/16 of the
            # input's positions, at the end of the backward pass)
            stages = body_stages(self.body)
            if not stages:
                raise BackboneError(
                    f"{key}.trainable_stages={trainable_stages}: timm:{name} has no stages this option knows "
                    "(an EfficientNet's blocks, a ResNet's layers); use 0"
                )
            if not freeze or not 0 < trainable_stages <= len(stages):
                raise BackboneError(
                    f"{key}.trainable_stages={trainable_stages}: needs {key}.freeze=true and 1..{len(stages)} "
                    f"(the stages of timm:{name} up to L; 0 = the whole body frozen)"
                )
            for stage in stages[-trainable_stages:]:
                stage.requires_grad_(True)
        # the trained stages learn at stage_lr_scale x model.lr (lit/base.py): pretrained weights, moved gently
        self.stage_lr_scale = stage_lr_scale
        # stage_start: their lr is 0 before this optimizer step (lit/base.py). Why: trained from the first step under
        # own-image negatives they compute a position map before the clusters have found the classes (README section
        # 44), and a CRF target then sharpens that map; from step N on they start from the frozen body's clusters.
        if isinstance(stage_start, bool) or not isinstance(stage_start, int) or stage_start < 0:
            raise BackboneError(f"{key}.stage_start={stage_start}: must be an integer >= 0 (an optimizer step)")
        if stage_start and not trainable_stages:
            raise BackboneError(
                f"{key}.stage_start={stage_start} starts the trained stages: set {key}.trainable_stages > 0, "
                "or leave the start at 0"
            )
        self.stage_start = stage_start

    def slow_parameters(self) -> list[nn.Parameter]:
        """The trained stages' parameters of a frozen body (trainable_stages > 0), which learn at stage_lr_scale x lr;
        [] for a body that trains whole or not at all."""
        return [p for p in self.body.parameters() if p.requires_grad] if self.fixed_bn else []

    def train(self, mode: bool = True) -> TimmBackbone:
        super().train(mode)
        if self.fixed_bn:  # a frozen backbone keeps its BatchNorm statistics too
            self.body.eval()
        return self

    def load_weights(self, path: str | Path) -> None:
        """Load a local state dict into the timm body; every body parameter must be found in the file."""
        own, key = self.body.state_dict(), self.key
        source = read_state_dict(path, key)
        state = match_keys(own, source)
        if not state:
            raise BackboneError(
                f"{key}.weights={str(path)!r}: none of its keys matches timm:{self.name} "
                f"(file keys e.g. {list(source)[:3]}, model keys e.g. {list(own)[:3]}); "
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
                f"{key}.weights={str(path)!r} does not fit timm:{self.name}: "
                f"{len(wrong)} shape mismatch(es) {wrong[:3]}, {len(missing)} missing key(s) {missing[:3]} "
                "(with model.sobel=true the first conv has 5 input channels: use model.sobel=false)"
            )
        self.body.load_state_dict(state, strict=False)

    def body_features(self, x: torch.Tensor) -> torch.Tensor:
        """The body's map before the 1x1 projection to P (B, channels, H/d, W/d): what a probe reads to be
        independent of the projection's draw (evaluate probe_layer=body)."""
        x = x * self.scale + self.shift
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return self.body(x)[self.level]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body_features(x)
        if self.keep_body:
            self.kept_body = features.detach()
        L = self.project(features)
        return L if self.project_mlp is None else L + self.project_mlp(features)


class EncoderBody(nn.Module):
    """The correspondence lever's reference read from the encoder's own frozen body (model/reference=encoder_body):
    the features of TimmBackbone.body_features before the projection to P, kept from the encoder's forward pass.
    Why: a frozen body is in eval mode, so these are the features a reference network of the same preset and
    weights computes (model/reference=effnet_lite0_x4 beside model/encoder=effnet_lite0_x4), without its second
    forward pass, which doubled the step time on CPU. No parameters, so checkpoints keep their keys.
    (in_channels, P, d): the arguments every reference is built with; unused."""

    def __init__(self, in_channels: int = 3, P: None = None, d: int = 4) -> None:
        super().__init__()


def _pretrained_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std (RGB) the timm model `name` was trained with; ImageNet's where timm records none."""
    import timm

    cfg = timm.get_pretrained_cfg(name)  # None for a name timm records no weights for
    mean = tuple(getattr(cfg, "mean", None) or IMAGENET_MEAN)
    std = tuple(getattr(cfg, "std", None) or IMAGENET_STD)
    return mean[:3], std[:3]
