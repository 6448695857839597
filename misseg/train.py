"""python -m misseg.train [experiment=NAME] [key=value ...]: train, evaluate, write metrics.json."""

from __future__ import annotations

import time

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from misseg.config import config_dir
from misseg.provenance import update_run_info, write_run_info
from misseg.report import write_report
from misseg.runs import write_metrics
from misseg.sweep import run_task


def instantiate_dict(cfg: DictConfig | None) -> list:
    return [instantiate(v) for v in (cfg or {}).values() if v is not None and "_target_" in v]


def train(cfg: DictConfig) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = HydraConfig.get().runtime.output_dir
    start = time.time()
    # git commit + fully resolved config next to the results (rank 0 only under DDP)
    rank_zero_only(write_run_info)(
        run_dir, OmegaConf.to_container(cfg, resolve=True), list(HydraConfig.get().overrides.task), seed=cfg.seed
    )
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes)
    loggers = instantiate_dict(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=instantiate_dict(cfg.callbacks))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    result: dict = {}
    if cfg.evaluate:
        trainer.validate(model, datamodule=datamodule, verbose=False)
        result = dict(model.last_eval)
        if trainer.is_global_zero:
            write_metrics(run_dir, result, datamodule.classes)
            if cfg.get("report", True):
                write_report(run_dir, model.predict_maps, datamodule, result, loggers, title=type(model).__name__)
    if trainer.is_global_zero:
        update_run_info(run_dir, status="done", duration_s=round(time.time() - start, 3))
        print(f"run directory: {run_dir}")
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    # the value Hydra sweepers (Optuna) optimize; in a multirun a failing job is recorded, not fatal
    return run_task(train, cfg, metric=cfg.get("optimized_metric") or "miou")


if __name__ == "__main__":
    main()
