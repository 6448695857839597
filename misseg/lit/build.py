"""Objects from configs and checkpoints: the one place a method, a datamodule or a logger list is built
(for train, evaluate, predict, export and the K-means baseline).

`build_module(model_cfg, num_classes)` instantiates the composed `model` config (conf/model/: the method with its
encoder, heads and objective parts) and remembers that config, which every checkpoint then carries, so
`load_module(path)` rebuilds the same method from the path alone. Checkpoints written before the model was
composed from groups (flat keys such as `encoder_width`) are translated with misseg.runs.config.RENAMED.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from misseg.runs.config import RENAMED, config_dir
from misseg.runs.errors import ConfigError, UserError

log = logging.getLogger(__name__)

# Classes a checkpoint may name: the name is untrusted input, so it selects from this list and is never
# imported freely. Value: (module, class, the conf/model option that builds it).
METHOD_CLASSES = {
    "misseg.lit.mi.MISegModule": ("misseg.lit.mi", "MISegModule", "mi"),
    "misseg.lit.iic.IICSegModule": ("misseg.lit.iic", "IICSegModule", "iic"),
}
# the names of the same classes before the package was grouped into rooms (checkpoints keep the name they had)
RENAMED_CLASSES = {
    "misseg.module.MISegModule": "misseg.lit.mi.MISegModule",
    "misseg.iic_module.IICSegModule": "misseg.lit.iic.IICSegModule",
}
DEFAULT_CLASS = "misseg.module.MISegModule"  # checkpoints written before the class was recorded


def instantiate_checked(cfg: DictConfig | dict, prefix: str = "model", **kwargs: Any) -> Any:
    """hydra.utils.instantiate, but a UserError or ValueError raised by a constructor (misseg's name the key and
    value) reaches the user as itself (one line), not wrapped in Hydra's InstantiationException."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, ValueError):
            raise ConfigError(str(cause)) from None
        unexpected = _unexpected_key(cfg, cause, prefix)  # `+model.tua=1`, `+model.encoder.x=1`
        if unexpected is not None:
            raise unexpected from None
        raise


def _unexpected_key(cfg: DictConfig | dict, error: BaseException | None, prefix: str) -> ConfigError | None:
    """The node of `cfg` (itself or a part with a _target_) whose constructor refused a keyword -> one line."""
    from hydra.utils import get_object

    from misseg.runs.validation import unexpected_key_error

    nodes = [(prefix, cfg)] + [(f"{prefix}.{k}", v) for k, v in cfg.items() if isinstance(v, dict | DictConfig)]
    for key, node in nodes:
        target = node.get("_target_")
        if target and f"{str(target).rsplit('.', 1)[-1]}.__init__()" in str(error):
            return unexpected_key_error(key, get_object(target), error)
    return None


def instantiate_dict(cfg: DictConfig | None) -> list:
    """Every entry of a config dict that has a _target_ (loggers, callbacks), instantiated."""
    from hydra.utils import instantiate

    return [instantiate(v) for v in (cfg or {}).values() if v is not None and "_target_" in v]


def make_datamodule(data_cfg: DictConfig, run_dir: str | Path):
    """Instantiate the data; the start-up scan's bad files go to RUN_DIR/bad_files.txt (skipped or fatal)."""
    from misseg.data.scan import BadFilesError, write_bad_files

    try:
        datamodule = instantiate_checked(data_cfg, prefix="data")
    except BadFilesError as e:
        path = write_bad_files(Path(run_dir) / "bad_files.txt", e.bad)
        raise BadFilesError(f"{e} Full list: {path}", e.bad) from None
    skipped = getattr(datamodule, "skipped", [])
    if skipped:
        path = write_bad_files(Path(run_dir) / "bad_files.txt", skipped)
        log.warning("data.on_bad_file=skip: skipped %d bad file(s), listed in %s", len(skipped), path)
        print(f"skipped {len(skipped)} bad file(s), listed in {path}", file=sys.stderr)
    ignored = getattr(datamodule, "ignored", [])
    if ignored:  # notes.txt, .DS_Store: not errors, but never skipped without a word
        path = write_bad_files(Path(run_dir) / "ignored_files.txt", ignored)
        print(f"ignored {len(ignored)} file(s) that are not images/masks, listed in {path}", file=sys.stderr)
    return datamodule


def build_module(model_cfg: DictConfig | dict, num_classes: int | None = None, **overrides: Any):
    """The LightningModule of a composed `model` config; `overrides` replace top-level keys (e.g. matching)."""
    cfg = model_cfg if isinstance(model_cfg, dict) else OmegaConf.to_container(model_cfg, resolve=True)
    cfg = {**copy.deepcopy(cfg), **overrides}
    cfg["_target_"] = RENAMED_CLASSES.get(cfg["_target_"], cfg["_target_"])
    module = instantiate_checked(cfg, num_classes=num_classes)
    module.model_config = {**cfg, "K": module.hparams.K}  # K resolved: a checkpoint must not depend on the data
    return module


def compose_model(method: str = "mi", overrides: Sequence[str] = ()) -> dict:
    """The `model` config of conf/model/<method>.yaml with `key=value` overrides relative to it (e.g.
    ["P=8", "encoder.width=4", "model/encoder=timm"]), as a plain dict: for notebooks and tests."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def relative(o: str) -> str:
        prefix = o[: len(o) - len(o.lstrip("+~"))]
        return o if o.lstrip("+~").startswith("model/") else f"{prefix}model.{o[len(prefix) :]}"

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                "train", overrides=[f"model={method}", "data=folder", "data.root=.", *map(relative, overrides)]
            )
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"model config: {str(e).splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg.model, resolve=True)


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, float) else str(value)


def legacy_model_config(class_path: str, hparams: dict) -> dict:
    """The composed config of a checkpoint written with flat model keys (before issue 12)."""
    method = METHOD_CLASSES[class_path][2]
    flat = {k: v for k, v in hparams.items() if k != "num_classes"}
    backbone = flat.pop("backbone", None)
    overrides = [f"model/encoder={'timm' if backbone else 'thesis'}"]
    if backbone:
        overrides.append(f"encoder.name={str(backbone).removeprefix('timm:')}")
    nullable = {"mi": ("K", "tau", "h_bottleneck", "backbone_weights"), "iic": ("K", "K_over")}[method]
    thesis_only, timm_only = (
        ("encoder_depth", "encoder_width", "encoder_max_width", "kernel"),
        (
            "backbone_weights",
            "freeze_backbone",
        ),
    )
    known = _flat_keys(compose_model(method, overrides[:1]))
    for key, value in flat.items():
        path = RENAMED.get(key, key)
        if value is None and key not in nullable or key in (thesis_only if backbone else timm_only):
            continue
        if path in known:  # old IIC checkpoints also hold the MI keys they accepted and ignored
            overrides.append(f"{path}={_override_value(value)}")
    return compose_model(method, overrides)


def _flat_keys(cfg: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in cfg.items():
        keys |= _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return keys


def read_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: a checkpoint is untrusted input; ours hold only tensors and plain values."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a checkpoint, or one that needs arbitrary code to unpickle
        raise ConfigError(f"ckpt_path={path}: not a loadable misseg checkpoint ({type(e).__name__}: {e})") from None


def load_module(ckpt_path: str | Path, random_init: bool = False, seed: int = 0, **overrides: Any):
    """Any misseg method's checkpoint, rebuilt from the config it carries. random_init: the same architecture
    with fresh weights drawn after torch.manual_seed(seed) instead of the trained ones (the diagnostics'
    reference: the same draw on every call with the same seed; the global RNG is left seeded, as evaluate's
    recorded numbers assume). overrides: num_classes (the evaluation data's) and top-level model keys (e.g.
    matching)."""
    ckpt = read_checkpoint(ckpt_path)
    class_path = ckpt.get("misseg_class", DEFAULT_CLASS)
    class_path = RENAMED_CLASSES.get(class_path, class_path)
    if class_path not in METHOD_CLASSES:
        raise ConfigError(f"ckpt_path={ckpt_path}: records method {class_path!r}; known: {sorted(METHOD_CLASSES)}")
    hparams = dict(ckpt.get("hyper_parameters", {}))
    num_classes = overrides.pop("num_classes", None) or hparams.get("num_classes")
    if random_init:
        import torch

        torch.manual_seed(seed)
    try:
        cfg = ckpt.get("misseg_model") or legacy_model_config(class_path, hparams)
        module = build_module(cfg, num_classes, **overrides)
        if not random_init:
            module.load_state_dict(ckpt["state_dict"])
    except UserError:
        raise
    except Exception as e:
        raise ConfigError(
            f"ckpt_path={ckpt_path}: not a loadable misseg checkpoint ({type(e).__name__}: {e})"
        ) from None
    return module.eval()
