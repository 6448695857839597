"""Config validation before any compute: explicit checks over the composed Hydra config.

Every check raises ConfigError with one line naming the key, the bad value and the allowed range. The entry
points run `precheck` on the command line before Hydra creates a run directory (so a typo leaves nothing
behind) and `validate_train_cfg` / `validate_evaluate_cfg` again inside the job (multirun, --flags, compose API).
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from misseg.diagnostics.evaluation import check_crf_workers, check_diagnostics, require_crf
from misseg.metrics import MATCHINGS
from misseg.models import ENCODER_BODY_NEEDS, MERGES
from misseg.objectives import CORRESPONDENCE_PARTNERS, CRITICS, NEGATIVE_POSITIONS, NEGATIVES, check_own_image
from misseg.runs.errors import ConfigError, UserError

SPLITS = ("transductive", "holdout", "lists")
MISSING = object()


def _get(cfg: DictConfig, key: str, default: Any = MISSING) -> Any:
    value = OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
    if value is MISSING:
        raise ConfigError(f"{key}: missing from the config")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(key: str, value: Any, low: int, why: str = "") -> None:
    if not is_int(value) or value < low:
        raise ConfigError(f"{key}={value!r}: must be an integer >= {low}{why}")


def check_positive(key: str, value: Any, allow_none: bool = False, none_means: str = "") -> None:
    if value is None and allow_none:
        return
    if not is_number(value) or value <= 0:
        alt = f" or null ({none_means})" if allow_none else ""
        raise ConfigError(f"{key}={value!r}: must be a number > 0{alt}")


def check_nonnegative(key: str, value: Any, why: str = "") -> None:
    if not is_number(value) or value < 0:
        raise ConfigError(f"{key}={value!r}: must be a number >= 0{why}")


def check_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r}: use one of {', '.join(map(str, choices))}")


def check_model(model: DictConfig, prefix: str = "model") -> None:
    K = model.get("K")
    if K is not None:
        check_int(f"{prefix}.K", K, 2, " (number of clusters) or null (= number of classes of the data)")
    if "P" in model:
        check_int(f"{prefix}.P", model.P, 1, " (feature dimension)")
    if "tau" in model:
        check_positive(f"{prefix}.tau", model.tau, allow_none=True, none_means="= 1/sqrt(P)")
    if "d" in model:
        d = model.d
        if not is_int(d) or d < 1 or d & (d - 1):
            raise ConfigError(f"{prefix}.d={d!r}: the downsampling factor must be a power of 2 (1, 2, 4, 8, ...)")
    if "lr" in model:
        check_positive(f"{prefix}.lr", model.lr)
    check_nonnegative(f"{prefix}.weight_decay", model.get("weight_decay", 0.0))
    if "matching" in model:
        check_choice(f"{prefix}.matching", model.matching, MATCHINGS)
    check_model_parts(model, prefix)


def check_model_parts(model: DictConfig, prefix: str = "model") -> None:
    """Ranges and cross-key rules of the encoder / heads / objective groups (their types are Hydra's business)."""
    encoder, heads, objective = (model.get(k) or {} for k in ("encoder", "heads", "objective"))
    for key in ("depth", "width", "max_width", "kernel"):
        if key in encoder:
            check_int(f"{prefix}.encoder.{key}", encoder[key], 1)
    if "stage_start" in encoder:  # before the run directory is written (the backbone checks it again when built)
        check_int(f"{prefix}.encoder.stage_start", encoder.stage_start, 0, " (an optimizer step; 0 = the first)")
        if encoder.stage_start and not encoder.get("trainable_stages"):  # a start of nothing: say so
            raise ConfigError(
                f"{prefix}.encoder.stage_start={encoder.stage_start} starts the trained stages: set "
                f"{prefix}.encoder.trainable_stages > 0, or leave the start at 0"
            )
    d = model.get("d")
    if "depth" in encoder and is_int(d) and d > 0 and encoder.depth < max(d.bit_length() - 1, 1):
        raise ConfigError(
            f"{prefix}.encoder.depth={encoder.depth} must be >= log2({prefix}.d)={d.bit_length() - 1} "
            "(one stride-2 block each)"
        )
    for key in ("width", "shared_layers", "pool"):
        if key in heads:
            check_int(f"{prefix}.heads.{key}", heads[key], 0 if key == "shared_layers" else 1)
    if heads.get("bottleneck") is not None:
        check_int(f"{prefix}.heads.bottleneck", heads.bottleneck, 1, " or null (no bottleneck)")
    for key, or_null in (("momentum", ""), ("merge_momentum", " or null (= momentum)")):  # null: merge's only
        value = heads.get(key)
        if key in heads and not (or_null and value is None) and (not is_number(value) or not 0 <= value < 1):
            raise ConfigError(f"{prefix}.heads.{key}={value!r}: must be a number in [0, 1){or_null}")
    for key in ("reseed_after", "overcluster"):
        if key in heads:
            check_int(f"{prefix}.heads.{key}", heads[key], 1)
    if "merge" in heads:
        check_choice(f"{prefix}.heads.merge", heads.merge, MERGES)
    if "views" in objective:
        check_choice(f"{prefix}.objective.views", objective.views, (1, 2))
    if "negatives" in objective:
        check_choice(f"{prefix}.objective.negatives", objective.negatives, NEGATIVES)
    if "critic" in objective:
        check_choice(f"{prefix}.objective.critic", objective.critic, CRITICS)
    if "negative_positions" in objective:
        check_choice(f"{prefix}.objective.negative_positions", objective.negative_positions, NEGATIVE_POSITIONS)
    try:
        check_own_image(objective.get("negatives", "local"), objective.get("negative_positions", "same"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if "view_shift" in objective:
        check_int(f"{prefix}.objective.view_shift", objective.view_shift, 0, " (cells of L's grid; 0 = off)")
        if objective.view_shift and objective.get("views", 1) != 2:
            raise ConfigError(
                f"{prefix}.objective.view_shift={objective.view_shift} moves the second view: set "
                f"{prefix}.objective.views=2 (with view_jitter=0 view_hue=0 view_hflip=false, the shift alone)"
            )
    if "correspondence_weight" in objective:
        check_nonnegative(f"{prefix}.objective.correspondence_weight", objective.correspondence_weight, " (0 = off)")
    if "crf_target_weight" in objective:
        check_nonnegative(f"{prefix}.objective.crf_target_weight", objective.crf_target_weight, " (0 = off)")
        if objective.crf_target_weight:
            require_crf(f"{prefix}.objective.crf_target_weight={objective.crf_target_weight}: the lever")
    if "crf_target_start" in objective:
        check_int(
            f"{prefix}.objective.crf_target_start", objective.crf_target_start, 0, " (an optimizer step; 0 = the first)"
        )
        if objective.crf_target_start and not objective.get("crf_target_weight", 0):  # a start of nothing: say so
            raise ConfigError(
                f"{prefix}.objective.crf_target_start={objective.crf_target_start} starts the CRF target: set "
                f"{prefix}.objective.crf_target_weight > 0 (e.g. 1), or leave the start at 0"
            )
    if "correspondence_partner" in objective:
        check_choice(
            f"{prefix}.objective.correspondence_partner", objective.correspondence_partner, CORRESPONDENCE_PARTNERS
        )
    reference = model.get("reference")
    body = reference is not None and str(reference.get("_target_", "")).endswith(".EncoderBody")
    if reference is not None and not objective.get("correspondence_weight"):
        what = "the encoder's body" if body else f"timm {reference.get('name', '?')}"
        raise ConfigError(
            f"{prefix}/reference is set ({what}), but only the correspondence "
            f"lever reads a reference network; set {prefix}.objective.correspondence_weight > 0, or leave "
            f"{prefix}/reference out"
        )
    if body and not (str(encoder.get("_target_", "")).endswith(".TimmBackbone") and encoder.get("freeze")):
        raise ConfigError(ENCODER_BODY_NEEDS)
    for key in ("upsample", "stride"):
        if encoder.get(key) is not None:
            check_int(f"{prefix}.encoder.{key}", encoder[key], 1)
    if "T" in objective:
        check_int(f"{prefix}.objective.T", objective.T, 0, " (displacement half-width)")
    if model.get("K_over") is not None:
        check_int(f"{prefix}.K_over", model.K_over, 2, " or null (no over-clustering head)")


def check_renamed_keys(overrides: Sequence[str]) -> None:
    """An override of a model key that was renamed when the model became config groups names the new key."""
    from misseg.runs.config import RENAMED

    for item in overrides:
        key = item.partition("=")[0].lstrip("+~")
        head, _, name = key.rpartition(".")
        if head == "model" and name in RENAMED:
            new = "model/encoder=timm model.encoder.name=<name>" if name == "backbone" else f"model.{RENAMED[name]}"
            raise ConfigError(f"{key} was renamed: use {new}")


def check_data(data: DictConfig, prefix: str = "data", training: bool = True) -> None:
    if training:
        check_int(
            f"{prefix}.batch_size",
            data.get("batch_size"),
            2,
            ": the JSD bound takes its negatives from the other images of the batch, so a batch needs >= 2 images",
        )
    if data.get("eval_batch_size") is not None:
        check_int(f"{prefix}.eval_batch_size", data.eval_batch_size, 1)
    image_size = data.get("image_size")
    check_int(f"{prefix}.image_size", image_size, 1, " (crop size in pixels)")
    resize = data.get("resize_shorter")
    if resize is not None:
        check_int(f"{prefix}.resize_shorter", resize, 1, " or null (no resize)")
        if image_size > resize:
            raise ConfigError(
                f"{prefix}.image_size={image_size}: the crop is larger than the pre-scaled image "
                f"({prefix}.resize_shorter={resize}); use {prefix}.image_size <= {resize}"
            )
    elif "native_size" in data and image_size > data.native_size:
        raise ConfigError(
            f"{prefix}.image_size={image_size}: the crop is larger than the image "
            f"({prefix}.native_size={data.native_size}); use {prefix}.image_size <= {data.native_size}"
        )
    if "num_workers" in data:
        check_int(f"{prefix}.num_workers", data.num_workers, 0)
    split = data.get("split", "transductive")
    check_choice(f"{prefix}.split", split, SPLITS)
    if split == "holdout":
        vf = data.get("val_fraction")
        if not is_number(vf) or not 0 < vf < 1:
            raise ConfigError(f"{prefix}.val_fraction={vf!r}: must be a number in (0, 1) with {prefix}.split=holdout")
    if "on_bad_file" in data:
        check_choice(f"{prefix}.on_bad_file", data.on_bad_file, ("stop", "skip"))
    if "num_images" in data:
        check_int(f"{prefix}.num_images", data.num_images, 2)
    if "root" in data and "_target_" in data and "Folder" in str(data._target_):
        root = Path(str(data.root)).expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"data.root={root}: no such directory. Point data.root at a folder with images/, masks/ and "
                "classes.txt (for COCO, make one with `python -m misseg.data.prepare`)."
            )


def data_num_classes(data: DictConfig) -> int | None:
    """Number of classes known without touching images: synthetic num_classes, or lines of classes.txt."""
    if is_int(data.get("num_classes")):
        return data.num_classes
    root = data.get("root")
    if root:
        path = Path(str(root)).expanduser() / "classes.txt"
        if path.is_file():
            return len([line for line in path.read_text().splitlines() if line.strip()])
    return None


def check_clusters_match_classes(
    K: int | None, num_classes: int | None, matching: str, key: str = "model.K", matching_key: str = "model.matching"
) -> None:
    """Hungarian matching is one-to-one: it needs exactly one cluster per class (the thesis's protocol).

    key / matching_key: how the user sets K and the matching (evaluate: K comes from the checkpoint)."""
    if K is None or num_classes is None or matching != "hungarian" or K == num_classes:
        return
    if key.startswith("model."):
        fix = f"set {key}={num_classes} or null (= the number of classes)"
    else:
        fix = f"use a checkpoint trained with model.K={num_classes}"
    if K > num_classes:
        alt = f"or {matching_key}=majority (many-to-one) to score {K} clusters (over-clustering)"
    else:  # majority runs, but some classes then get no cluster at all
        alt = (
            f"or {matching_key}=majority (many-to-one), where at least {num_classes - K} of the "
            f"{num_classes} classes get no cluster and score IoU 0"
        )
    raise ConfigError(
        f"{key}={K}: Hungarian matching (one-to-one) needs K = the number of classes of the data "
        f"({num_classes}), and {K} is {'more' if K > num_classes else 'fewer'}; {fix}, {alt}"
    )


def check_trainer(trainer: DictConfig) -> None:
    for key in ("max_epochs", "max_steps"):
        if key in trainer and trainer[key] is not None:
            check_int(f"trainer.{key}", trainer[key], -1)
    if "log_every_n_steps" in trainer:
        check_int("trainer.log_every_n_steps", trainer.log_every_n_steps, 1)


def check_ckpt_path(value: Any, allow_last: bool, key: str = "ckpt_path") -> None:
    if value is None or (allow_last and value == "last"):
        return
    path = Path(str(value)).expanduser()
    if not path.is_file():
        hint = " (or 'last' to resume the run in hydra.run.dir, or null to start fresh)" if allow_last else ""
        raise ConfigError(f"{key}={value}: no such checkpoint file{hint}")


def validate_train_cfg(cfg: DictConfig) -> None:
    """Checks for python -m misseg.train; raises ConfigError on the first bad key."""
    check_int("seed", cfg.get("seed", 0), 0)
    if cfg.get("num_threads") is not None:
        check_int("num_threads", cfg.num_threads, 1, " or null (torch's default)")
    check_crf_workers(cfg)
    check_model(_get(cfg, "model"))
    check_data(_get(cfg, "data"))
    check_trainer(_get(cfg, "trainer"))
    check_clusters_match_classes(cfg.model.get("K"), data_num_classes(cfg.data), cfg.model.get("matching", "hungarian"))
    check_ckpt_path(cfg.get("ckpt_path"), allow_last=True)


def validate_evaluate_cfg(cfg: DictConfig) -> None:
    """Checks for python -m misseg.evaluate (the model's own keys come from the checkpoint)."""
    check_int("seed", cfg.get("seed", 0), 0)
    check_choice("matching", cfg.get("matching", "hungarian"), MATCHINGS)
    data = _get(cfg, "data")
    if data.get("eval_batch_size") is None:
        check_int("data.batch_size", data.get("batch_size"), 1)
    check_data(data, training=False)
    check_ckpt_path(cfg.get("ckpt_path"), allow_last=False)
    check_diagnostics(cfg)  # probe, init, crf (misseg/diagnostics/evaluation.py)


KMEANS_FEATURES = ("rgb", "ckpt", "backbone")


def validate_kmeans_cfg(cfg: DictConfig) -> None:
    """Checks for python -m misseg.baselines.kmeans; raises ConfigError on the first bad key."""
    check_int("seed", cfg.get("seed", 0), 0)
    matching = cfg.get("matching", "hungarian")
    check_choice("matching", matching, MATCHINGS)
    data = _get(cfg, "data")
    check_data(data, training=False)
    from misseg.diagnostics.evaluation import check_crf

    check_crf(cfg.get("crf", False))
    check_crf_workers(cfg)
    km = _get(cfg, "kmeans")
    if km.get("K") is not None:
        check_int("kmeans.K", km.K, 1, " (number of clusters; 1 = the trivial baseline) or null (= classes)")
    check_int("kmeans.iters", km.get("iters"), 1, " (Lloyd passes)")
    check_int("kmeans.restarts", km.get("restarts", 1), 1, " (seedings; the lowest inertia is kept)")
    check_int("kmeans.max_pixels_per_batch", km.get("max_pixels_per_batch"), 1)
    check_choice("kmeans.features", km.get("features"), KMEANS_FEATURES)
    if km.features == "ckpt":
        if not km.get("ckpt_path"):
            raise ConfigError("kmeans.features=ckpt needs kmeans.ckpt_path=PATH (a misseg checkpoint)")
        check_ckpt_path(km.ckpt_path, allow_last=False, key="kmeans.ckpt_path")
    if km.features == "backbone":
        b = km.get("backbone") or {}
        weights = b.get("weights")
        if not weights:
            raise ConfigError(
                "kmeans.features=backbone needs kmeans.backbone.weights=PATH (a local state dict of "
                "kmeans.backbone.name, e.g. the one experiments/scale/pretrained_weights.py writes)"
            )
        if not Path(str(weights)).expanduser().is_file():
            raise ConfigError(f"kmeans.backbone.weights={weights}: no such file")
        check_int("kmeans.backbone.upsample", b.get("upsample"), 1, " (1 = off)")
        check_int("kmeans.backbone.stride", b.get("stride"), 1)
        if b.stride % b.upsample:
            raise ConfigError(
                f"kmeans.backbone.stride={b.stride}: must be a multiple of kmeans.backbone.upsample={b.upsample}"
            )


# ------------------------------------------------------------------ command line, before Hydra starts


def split_overrides(argv: Sequence[str]) -> list[str] | None:
    """The key=value overrides of a plain run, or None when Hydra flags (-m, --cfg, -cn ...) are present:
    those are left to Hydra, and the job validates itself."""
    if any(a.startswith("-") for a in argv):
        return None
    return list(argv)


MULTIRUN_FLAGS = ("-m", "--multirun")


def sweep_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """`-m a=1,2 b=x` -> (["a=1", "b=x"], ["a=1", "a=2", "b=x"]): the first job's overrides and every
    key=value of the sweep, so a multirun's mistyped key or group option is refused (with its "did you
    mean") before any job starts. None when other Hydra flags are present or a sweep cannot be listed
    (interval(), a syntax error): those are left to Hydra."""
    if not any(a in MULTIRUN_FLAGS for a in argv) or any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if a not in MULTIRUN_FLAGS])
        first, every = [], []
        for override in parsed:
            if override.is_sweep_override():
                values = [f"{override.get_key_element()}={v}" for v in override.sweep_string_iterator()]
                first.append(values[0])
                every += values
            else:
                first.append(override.input_line)
                every.append(override.input_line)
        return first, every
    except Exception:
        return None


def compose_or_error(config_dir: str, config_name: str, overrides: list[str]) -> DictConfig:
    """Compose like Hydra would; unknown config group options and unknown keys become one-line ConfigErrors."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    check_group_choices(config_dir, overrides)
    check_renamed_keys(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        unknown = _UNKNOWN_OVERRIDE.search(str(e))
        if unknown:  # Hydra's own advice (`+key=value`) adds the key, which the constructor then refuses
            raise unknown_key_error(config_dir, config_name, overrides, unknown.group(1)) from None
        cause = f" ({str(e.__cause__).splitlines()[0]})" if e.__cause__ else ""
        specialised = _DATA_MODEL.match(str(e))
        if specialised:  # e.g. the demo's heads.width with model/heads=prototypes, which has no width
            cause += (
                f"; conf/data_model/{specialised.group(1)}.yaml sets the sizes of that (data, model, encoder) "
                "combination (the demo's for data=synthetic): train on other data (data=folder data.root=DIR) "
                "with this choice, or keep the demo with the group option that has the key"
            )
        raise ConfigError(str(e).split("\n\nAvailable options")[0] + cause) from None
    finally:
        GlobalHydra.instance().clear()


_INTEGER = re.compile(r"[+-]?\d+")


def check_bool_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Refuse an integer given to a true/false key: OmegaConf reads any integer as a bool (`vflip=3` is true),
    so a number typed into the wrong key would switch a lever silently."""
    from omegaconf import BooleanNode

    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or not _INTEGER.fullmatch(value.strip()):
            continue
        parent, _, leaf = key.rpartition(".")
        node = cfg if not parent else OmegaConf.select(cfg, parent, default=None, throw_on_missing=False)
        if isinstance(node, DictConfig) and isinstance(node._get_node(leaf, throw_on_missing_key=False), BooleanNode):
            raise ConfigError(f"{key}={value.strip()}: a true/false key; use {key}=true or {key}=false")


_UNKNOWN_OVERRIDE = re.compile(r"Could not override '([^']+)'")
_DATA_MODEL = re.compile(r"In 'data_model/([^']+)'")
_UNEXPECTED_KEYWORD = re.compile(r"unexpected keyword argument '([^']+)'")


def closest_key(key: str, valid: Sequence[str]) -> str | None:
    """The valid dotted key nearest to a mistyped one: first among its siblings (model.tua -> model.tau,
    case-insensitive, so model.k -> model.K), then among every key (modle.tau -> model.tau)."""
    parent, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2].lower(): k for k in valid if k.rpartition(".")[0] == parent}
    match = difflib.get_close_matches(leaf.lower(), list(siblings), n=1, cutoff=0.6)
    if match:
        return siblings[match[0]]
    lowered = {k.lower(): k for k in valid}
    match = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[match[0]] if match else None


def config_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config (nodes and leaves), without Hydra's own `hydra.*` and `_target_`-like keys."""
    keys = []
    for name in cfg.keys():
        name = str(name)
        if (not prefix and name == "hydra") or name.startswith("_"):
            continue
        full = f"{prefix}{name}"
        keys.append(full)
        node = cfg._get_node(name)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            keys += config_keys(node, f"{full}.")
    return keys


def did_you_mean(key: str, valid: Sequence[str]) -> str:
    guess = closest_key(key, valid)
    return f"did you mean {guess}?" if guess else "no similar key"


def unknown_key_error(config_dir: str, config_name: str, overrides: Sequence[str], key: str) -> ConfigError:
    """`key=value` names a key the config does not have: suggest the closest valid one (never `+key`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    rest = [o for o in overrides if o.partition("=")[0].lstrip("+~") != key]
    valid: list[str] = []
    GlobalHydra.instance().clear()
    try:  # the config without the bad key, for its list of keys; another bad override leaves the list empty
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            valid = config_keys(compose(config_name, overrides=rest))
    except Exception:
        pass
    finally:
        GlobalHydra.instance().clear()
    return ConfigError(
        f"{key}: no such config key ({did_you_mean(key, valid)}); "
        f"`python -m misseg.{config_name} --cfg job` lists every key"
    )


def constructor_parameters(target: Callable) -> list[str]:
    """Keyword parameters a class (along its __init__ chain, through **kwargs) or function accepts."""
    names: list[str] = []
    for fn in (
        [c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    ):
        params = inspect.signature(fn).parameters.values()
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return list(dict.fromkeys(names))


def unexpected_key_error(prefix: str, target: Callable, error: BaseException) -> ConfigError | None:
    """A TypeError "unexpected keyword argument 'x'" from instantiating `prefix` (e.g. model, after
    `+model.x=1`) as a one-line ConfigError naming prefix.x and the closest parameter; None for other errors."""
    found = _UNEXPECTED_KEYWORD.search(str(error))
    if not isinstance(error, TypeError) or not found:
        return None
    key = f"{prefix}.{found.group(1)}"
    try:
        valid = [f"{prefix}.{name}" for name in constructor_parameters(target)]
    except (TypeError, ValueError):  # no introspectable signature
        valid = []
    name = getattr(target, "__qualname__", str(target))
    return ConfigError(f"{key}: {name} takes no such parameter ({did_you_mean(key, valid)}); remove it")


def check_group_choices(config_dir: str, overrides: list[str]) -> None:
    """group=name for a config group (experiment, data, model, trainer ...) must name a file of that group."""
    root = Path(config_dir)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        # hydra/launcher, hydra/sweeper ...: plugins add options conf/ does not hold (submitit_local)
        if not sep or key.startswith("hydra") or not (root / key).is_dir() or value in ("", "null"):
            continue
        valid = sorted(p.stem for p in (root / key).glob("*.yaml"))
        if value not in valid:
            raise ConfigError(f"{key}={value}: unknown {key}; valid: {', '.join(valid)}")


def precheck(
    config_dir: str,
    config_name: str,
    argv: Sequence[str],
    validate: Callable[[DictConfig], None],
    run_dir_check: Callable[[DictConfig], None] | None = None,
) -> DictConfig | None:
    """Compose + validate the command line before Hydra runs (so nothing is created for a bad config)."""
    overrides = split_overrides(argv)
    if overrides is None:
        sweep = sweep_overrides(argv)
        if sweep is not None:  # -m: only the keys and group names are checked; values may differ per job
            check_group_choices(config_dir, sweep[1])
            check_bool_overrides(compose_or_error(config_dir, config_name, sweep[0]), sweep[1])
        return None
    cfg = compose_or_error(config_dir, config_name, overrides)
    check_bool_overrides(cfg, overrides)
    try:
        validate(cfg)
        if run_dir_check is not None:
            run_dir_check(cfg)
    except UserError:
        raise
    except Exception as e:  # an interpolation that cannot resolve, a wrong type: still the user's config
        raise ConfigError(f"config: {type(e).__name__}: {e}") from None
    return cfg
