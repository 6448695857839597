"""python -m misseg.evaluate ckpt_path=PATH [data overrides]: Hungarian-matched PA/mIoU -> metrics.json."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from misseg.build import load_module, make_datamodule
from misseg.config import config_dir
from misseg.errors import reported_errors
from misseg.resume import check_run_dir
from misseg.validation import check_clusters_match_classes, precheck, validate_evaluate_cfg


def evaluate(cfg: DictConfig) -> dict:
    import pytorch_lightning as pl

    from misseg.console import quiet_libraries
    from misseg.report import write_report
    from misseg.runs import format_summary, metrics_record, write_metrics

    quiet_libraries()
    validate_evaluate_cfg(cfg)
    run_dir = HydraConfig.get().runtime.output_dir
    check_run_dir(run_dir, None)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = make_datamodule(cfg.data, run_dir)
    module = load_module(cfg.ckpt_path, num_classes=datamodule.num_classes, matching=cfg.matching)
    check_clusters_match_classes(
        module.hparams.K, datamodule.num_classes, cfg.matching, key="K (checkpoint)", matching_key="matching"
    )
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.validate(module, datamodule=datamodule, verbose=False)
    result = dict(module.last_eval)
    if trainer.is_global_zero:
        metrics = metrics_record(result, datamodule.classes, weights=f"ckpt_path={cfg.ckpt_path}")
        metrics_path = write_metrics(run_dir, metrics)
        figures = {}
        if cfg.get("report", True):
            figures = write_report(run_dir, module.predict_maps, datamodule, result, title=type(module).__name__)
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
