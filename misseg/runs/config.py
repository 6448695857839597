"""Hydra glue: where the configs live, and the typed schemas (types, no values) of the model's config groups.

The schemas are dataclasses in Hydra's ConfigStore. Each YAML option of `conf/model/{encoder,heads,objective}/`
and each method (`conf/model/{mi,iic}.yaml`) starts from one of them (its defaults list names `_<schema>`), so a
misspelled key or a value of the wrong type is refused by Hydra while composing, before torch is imported.
Ranges and rules across keys that a type cannot express are checked in misseg/runs/validation.py.
This module imports no torch: `import misseg.runs.config` registers the schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 (OmegaConf reads Optional[...] annotations, not X | None)

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


def config_dir() -> str:
    """misseg/conf inside an installed wheel (pyproject maps conf/ there); else the repository's conf/."""
    package = Path(__file__).resolve().parents[1]  # misseg/
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"misseg configs not found next to {package}: reinstall misseg (pip install .)")


# ---------------------------------------------------------------- encoder C (conf/model/encoder/)
# Every encoder is built by the method as encoder(in_channels=..., P=model.P, d=model.d): x -> L (B, P, H/d, W/d).


@dataclass
class ThesisEncoder:
    """The thesis's scratch CNN C (models/encoder.py): `depth` Conv/BN/ReLU blocks, widths doubling per stride."""

    _target_: str = "misseg.models.encoder.LocalEncoder"
    _partial_: bool = True
    depth: int = MISSING
    width: int = MISSING
    max_width: int = MISSING
    kernel: int = MISSING


@dataclass
class TimmEncoder:
    """A timm network (models/backbone.py), random init; `weights`: a local state dict loaded when training starts."""

    _target_: str = "misseg.models.backbone.TimmBackbone"
    _partial_: bool = True
    name: str = MISSING
    weights: Optional[str] = MISSING  # noqa: UP045
    freeze: bool = MISSING
    stride: Optional[int] = None  # noqa: UP045  the body's output stride; null = model.d * upsample
    dilate: bool = False  # keep the deeper stages at that stride (dilated), so L comes from the deepest map
    upsample: int = 1  # enlarge the input by this factor first: L's stride on the input is stride / upsample
    # the RGB statistics the weights were trained with; null = timm's pretrained_cfg of `name` (ImageNet's for
    # ResNets, [-1, 1] for the TF EfficientNets and timm's default ViTs: set these for e.g. DINO ViT weights)
    input_mean: Optional[list[float]] = None  # noqa: UP045
    input_std: Optional[list[float]] = None  # noqa: UP045
    key: str = "model.encoder"  # where these settings live in the config, named in errors (model/reference: its own)
    projection: str = "linear"  # body -> L: linear (1x1 conv) or mlp (STEGO's head: linear + a residual 1x1 MLP)
    trainable_stages: int = 0  # with freeze: the body's last N stages train all the same (BatchNorm statistics fixed)
    stage_lr_scale: float = 0.1  # their lr, as a fraction of model.lr
    stage_start: int = 0  # their lr is 0 before this optimizer step (0 = they train from the first)


@dataclass
class VGGEncoder:
    """IIC's COCO-Stuff trunk (models/vgg.py)."""

    _target_: str = "misseg.models.vgg.VGGTrunkEncoder"
    _partial_: bool = True
    width: int = MISSING


# ---------------------------------------------------------------- heads F_k (conf/model/heads/)


@dataclass
class ThesisHeads:
    """F_1..F_K (models/heads.py), built as heads(K=..., P=...): L -> H (B, K, P)."""

    _target_: str = "misseg.models.heads.HighLevelHeads"
    _partial_: bool = True
    width: int = MISSING
    shared_layers: int = MISSING
    pool: int = MISSING
    bottleneck: Optional[int] = MISSING  # noqa: UP045  lever: each F_k maps to this many dims, then one shared linear
    region: bool = MISSING  # lever: H_k + the mean of L over the region p'_k claims
    center: bool = MISSING  # lever: standardise each extractor's pooled features over the images (BatchNorm)


@dataclass
class PrototypeHeadsConf:
    """K learned vectors, the same for every image (models/prototypes.py), built as heads(K=..., P=...)."""

    _target_: str = "misseg.models.prototypes.PrototypeHeads"
    _partial_: bool = True


@dataclass
class CentroidHeadsConf:
    """K running means of L, the same for every image (models/centroids.py), built as heads(K=..., P=...)."""

    _target_: str = "misseg.models.centroids.CentroidHeads"
    _partial_: bool = True
    momentum: float = MISSING  # c_k <- momentum c_k + (1 - momentum) (the batch's mean of the L_ij assigned to k)
    reseed_after: int = 1  # a class no position chose in this many batches in a row moves to a random position
    overcluster: int = 1  # m K centres, merged into K classes for the prediction (label-free); 1 = K centres
    merge: str = "coassignment"  # the merge rule: coassignment (E[p'_k p'_l]) | centres (average linkage of H_k)
    merge_momentum: Optional[float] = None  # noqa: UP045  the co-assignment's running-mean momentum; None = momentum


# ---------------------------------------------------------------- objectives (conf/model/objective/)


@dataclass
class MIObjectiveConf:
    """The JSD bound of the thesis (objectives/mi.py), built as objective(tau=...); levers off by default."""

    _target_: str = "misseg.objectives.mi.MIObjective"
    _partial_: bool = True
    detach_assignment: bool = MISSING
    negatives: str = MISSING
    entropy_weight: float = MISSING
    in_image_weight: float = MISSING
    views: int = MISSING
    view_jitter: float = MISSING
    view_hue: float = MISSING
    view_vflip: bool = False  # a default, not MISSING: checkpoints from before the key load with it off
    view_hflip: bool = True  # the same (on: the second view as it always was)
    view_shift: int = 0  # the same
    hard_assignment: bool = False  # the same
    critic: str = "dot"  # the same
    centre_heads: bool = False  # the same
    crf_target_weight: float = 0.0  # the same
    crf_target_start: int = 0  # the same
    negative_positions: str = MISSING
    correspondence_weight: float = MISSING
    correspondence_partner: str = MISSING


@dataclass
class IICObjectiveConf:
    """IIC's dense MI between two views (objectives/iic.py)."""

    _target_: str = "misseg.objectives.iic.IICObjective"
    T: int = MISSING
    lamb: float = MISSING
    jitter: float = MISSING
    hue: float = MISSING
    flip: bool = MISSING
    loss_at_input_size: bool = MISSING
    vflip: bool = False  # a default, not MISSING: checkpoints from before the key load with it off


# ---------------------------------------------------------------- methods (conf/model/{mi,iic}.yaml)


@dataclass
class MethodConf:
    """Keys every method has; the shared LightningModule base (lit/base.py) uses lr, weight_decay, matching."""

    _target_: str = MISSING
    K: Optional[int] = MISSING  # noqa: UP045  null = the number of classes of the data
    P: int = MISSING
    d: int = MISSING
    sobel: bool = MISSING
    ignore_in_loss: bool = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    matching: str = MISSING
    encoder: Any = MISSING


@dataclass
class MIConf(MethodConf):
    _target_: str = "misseg.lit.mi.MISegModule"
    tau: Optional[float] = MISSING  # noqa: UP045  null = 1/sqrt(P)
    channels_last: bool = MISSING
    compile: bool = MISSING
    heads: Any = MISSING
    objective: Any = MISSING
    reference: Any = None  # model/reference=...: the lever's frozen reference (a TimmEncoder preset); null = C at init


@dataclass
class IICConf(MethodConf):
    _target_: str = "misseg.lit.iic.IICSegModule"
    K_over: Optional[int] = MISSING  # noqa: UP045
    objective: Any = MISSING


SCHEMAS = {
    ("model", "_mi_schema"): MIConf,
    ("model", "_iic_schema"): IICConf,
    ("model/encoder", "_thesis_schema"): ThesisEncoder,
    ("model/encoder", "_timm_schema"): TimmEncoder,
    ("model/encoder", "_vgg_schema"): VGGEncoder,
    ("model/heads", "_thesis_schema"): ThesisHeads,
    ("model/heads", "_prototypes_schema"): PrototypeHeadsConf,
    ("model/heads", "_centroids_schema"): CentroidHeadsConf,
    ("model/objective", "_mi_schema"): MIObjectiveConf,
    ("model/objective", "_iic_schema"): IICObjectiveConf,
}


def register_schemas() -> None:
    store = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        store.store(group=group, name=name, node=node)


register_schemas()

# Keys of the flat model config before the model was composed from groups (issue 12): an old command line gets
# an error naming the new key, and a checkpoint written with them still loads (lit/build.py).
RENAMED = {
    "encoder_depth": "encoder.depth",
    "encoder_width": "encoder.width",
    "encoder_max_width": "encoder.max_width",
    "kernel": "encoder.kernel",
    "backbone": "encoder",  # model/encoder=timm model.encoder.name=<name>
    "backbone_weights": "encoder.weights",
    "freeze_backbone": "encoder.freeze",
    "head_width": "heads.width",
    "head_shared_layers": "heads.shared_layers",
    "head_pool": "heads.pool",
    "h_bottleneck": "heads.bottleneck",
    "region_heads": "heads.region",
    **{k: f"objective.{k}" for k in ("detach_assignment", "negatives", "entropy_weight", "in_image_weight")},
    **{k: f"objective.{k}" for k in ("views", "view_jitter", "view_hue")},
    **{k: f"objective.{k}" for k in ("T", "lamb", "jitter", "hue", "flip", "loss_at_input_size")},
}


def output_or_default(output: str | None, default: str) -> str:
    """Hydra run dir of predict: the user's output=DIR when given (so no logs/predict/runs/<time> appears
    beside it), else the default timestamped run dir."""
    return str(Path(str(output)).expanduser()) if output not in (None, "") else default


# used by conf/predict.yaml's hydra.run.dir; registered on import, before @hydra.main resolves it
if not OmegaConf.has_resolver("misseg.output_or"):
    OmegaConf.register_new_resolver("misseg.output_or", output_or_default)
