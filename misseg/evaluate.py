"""python -m misseg.evaluate ckpt_path=PATH [data overrides]: Hungarian-matched PA/mIoU -> metrics.json."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from misseg.lit.build import instantiate_dict, load_module, make_datamodule
from misseg.runs.config import config_dir
from misseg.runs.errors import reported_errors
from misseg.runs.resume import check_run_dir
from misseg.runs.validation import check_clusters_match_classes, precheck, validate_evaluate_cfg


def random_init_module(ckpt_path: str | Path, seed: int, initial: bool = False, **overrides):
    """The checkpoint's architecture with fresh weights seeded by `seed`, its own weights NOT loaded: the
    random-init reference of the probes (evaluate init=random). initial: then the weights files its config names
    (model.encoder.weights, model.reference.weights) are loaded, as when training started (init=initial: the
    reference a run from pretrained weights must beat)."""
    module = load_module(ckpt_path, random_init=True, seed=seed, **overrides)
    if initial:
        module.load_initial_weights()
    return module


def evaluate(cfg: DictConfig) -> dict:
    import pytorch_lightning as pl

    from misseg.diagnostics.evaluation import (
        calibrate_on_images,
        check_probe_layer,
        crf_evaluation,
        device_for,
        diagnostics,
        report_predictor,
        use_crf_workers,
    )
    from misseg.runs.console import quiet_libraries
    from misseg.runs.results import format_summary, metrics_record, write_metrics
    from misseg.viz.report import write_report

    quiet_libraries()
    validate_evaluate_cfg(cfg)
    run_dir = HydraConfig.get().runtime.output_dir
    check_run_dir(run_dir, None)
    pl.seed_everything(cfg.seed, workers=True)
    use_crf_workers(cfg)
    datamodule = make_datamodule(cfg.data, run_dir)
    overrides = dict(num_classes=datamodule.num_classes, matching=cfg.matching)
    init = cfg.get("init", "trained")
    random_init = init in ("random", "initial")
    calibrated = 0
    if random_init:
        module = random_init_module(cfg.ckpt_path, cfg.seed, initial=init == "initial", **overrides)
        if cfg.get("init_batchnorm", "init") == "data":
            calibrated = calibrate_on_images(module, datamodule, device_for(cfg))
    else:
        module = load_module(cfg.ckpt_path, **overrides)
    check_clusters_match_classes(
        module.hparams.K, datamodule.num_classes, cfg.matching, key="K (checkpoint)", matching_key="matching"
    )
    check_probe_layer(cfg, module)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    if cfg.get("crf", False):  # the CRF refines the maps before scoring: validation_step has no CRF
        result = crf_evaluation(module, datamodule, cfg.matching, device_for(cfg))
    else:
        trainer.validate(module, datamodule=datamodule, verbose=False)
        result = dict(module.last_eval)
    if trainer.is_global_zero:
        loggers = instantiate_dict(cfg.get("logger"))
        result.update(diagnostics(cfg, module, datamodule, result, run_dir, loggers))  # probe / crf / init
        weights = None
        if random_init:
            what = "random init" if init == "random" else "initial weights (its config's weights files)"
            statistics = f", BatchNorm statistics of the images ({calibrated} layers)" if calibrated else ""
            weights = f"{what} (seed {cfg.seed}){statistics}, architecture of ckpt_path={cfg.ckpt_path}"
        metrics = metrics_record(result, datamodule.classes, weights=weights or f"ckpt_path={cfg.ckpt_path}")
        metrics_path = write_metrics(run_dir, metrics)
        figures = {}
        if cfg.get("report", True):
            predict = report_predictor(module, cfg.get("crf", False))
            figures = write_report(run_dir, predict, datamodule, result, loggers, title=type(module).__name__)
        print(format_summary(metrics, run_dir, metrics_path, figures))
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
