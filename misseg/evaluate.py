"""python -m misseg.evaluate ckpt_path=PATH [data overrides]: Hungarian-matched PA/mIoU -> metrics.json."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from misseg.config import config_dir
from misseg.errors import ConfigError, reported_errors
from misseg.resume import check_run_dir
from misseg.validation import check_clusters_match_classes, precheck, validate_evaluate_cfg

# Classes a checkpoint may name (SegmentationModule.on_save_checkpoint records it): the name is untrusted
# input, so it selects from this list and is never imported freely.
METHOD_CLASSES = {
    "misseg.module.MISegModule": ("misseg.module", "MISegModule"),
    "misseg.iic_module.IICSegModule": ("misseg.iic_module", "IICSegModule"),
}


def _checkpoint_class(path: Path) -> tuple[type, dict]:
    """The class a checkpoint records (from METHOD_CLASSES) and the checkpoint dict (weights_only)."""
    import importlib

    import torch

    from misseg.segmodule import DEFAULT_CLASS

    if not path.is_file():
        raise ConfigError(f"ckpt_path={path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        class_path = ckpt.get("misseg_class", DEFAULT_CLASS)
    except Exception as e:  # truncated file, not a checkpoint, or one that needs arbitrary code to unpickle
        raise ConfigError(f"ckpt_path={path}: not a loadable misseg checkpoint ({type(e).__name__}: {e})") from None
    if class_path not in METHOD_CLASSES:
        raise ConfigError(f"ckpt_path={path}: records method {class_path!r}; known: {sorted(METHOD_CLASSES)}")
    module_name, class_name = METHOD_CLASSES[class_path]
    return getattr(importlib.import_module(module_name), class_name), ckpt


def load_module(ckpt_path: str | Path, **overrides):
    """Any misseg method's checkpoint. weights_only=True: a checkpoint is untrusted input; ours hold only
    tensors and plain values."""
    path = Path(ckpt_path).expanduser()
    cls, _ = _checkpoint_class(path)
    try:
        return cls.load_from_checkpoint(path, map_location="cpu", weights_only=True, **overrides)
    except Exception as e:
        raise ConfigError(f"ckpt_path={path}: not a loadable misseg checkpoint ({type(e).__name__}: {e})") from None


def random_init_module(ckpt_path: str | Path, seed: int, **overrides):
    """The checkpoint's architecture (its class and hyper_parameters) with fresh weights seeded by `seed`,
    its own weights NOT loaded: the random-init reference of the probes (evaluate init=random)."""
    import torch

    path = Path(ckpt_path).expanduser()
    cls, ckpt = _checkpoint_class(path)
    torch.manual_seed(seed)
    try:
        return cls(**{**ckpt.get("hyper_parameters", {}), **overrides})
    except Exception as e:
        raise ConfigError(f"ckpt_path={path}: cannot rebuild its architecture ({type(e).__name__}: {e})") from None


def evaluate(cfg: DictConfig) -> dict:
    import pytorch_lightning as pl

    from misseg.diagnose import crf_evaluation, device_for, diagnostics, report_predictor
    from misseg.report import write_report
    from misseg.runs import write_metrics
    from misseg.train import instantiate_dict, make_datamodule

    validate_evaluate_cfg(cfg)
    run_dir = HydraConfig.get().runtime.output_dir
    check_run_dir(run_dir, None)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = make_datamodule(cfg.data, run_dir)
    overrides = dict(num_classes=datamodule.num_classes, matching=cfg.matching)
    if cfg.get("init", "trained") == "random":
        module = random_init_module(cfg.ckpt_path, cfg.seed, **overrides)
    else:
        module = load_module(cfg.ckpt_path, **overrides)
    check_clusters_match_classes(module.hparams.K, datamodule.num_classes, cfg.matching, key="K (checkpoint)")
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    if cfg.get("crf", False):  # the CRF refines the maps before scoring: validation_step has no CRF
        result = crf_evaluation(module, datamodule, cfg.matching, device_for(cfg))
    else:
        trainer.validate(module, datamodule=datamodule, verbose=False)
        result = dict(module.last_eval)
    if trainer.is_global_zero:
        loggers = instantiate_dict(cfg.get("logger"))
        result.update(diagnostics(cfg, module, datamodule, result, run_dir, loggers))  # probe / crf / init
        write_metrics(run_dir, result, datamodule.classes)
        if cfg.get("report", True):
            predict = report_predictor(module, cfg.get("crf", False))
            write_report(run_dir, predict, datamodule, result, loggers, title=type(module).__name__)
        print(f"run directory: {run_dir}")
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
def hydra_main(cfg: DictConfig) -> float | None:
    with reported_errors():
        return evaluate(cfg).get("miou")


def main(argv: list[str] | None = None) -> None:
    """Validate the command line (and that the output dir is new) before Hydra creates anything, then run."""
    with reported_errors():
        precheck(
            config_dir(),
            "evaluate",
            sys.argv[1:] if argv is None else argv,
            validate_evaluate_cfg,
            lambda cfg: check_run_dir(cfg.hydra.run.dir, None),
        )
    hydra_main()


if __name__ == "__main__":
    main()
