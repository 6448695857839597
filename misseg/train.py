"""python -m misseg.train [experiment=NAME] [key=value ...]: train, evaluate, write metrics.json."""

from __future__ import annotations

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from misseg.config import config_dir
from misseg.report import write_report
from misseg.runs import write_metrics


def instantiate_dict(cfg: DictConfig | None) -> list:
    return [instantiate(v) for v in (cfg or {}).values() if v is not None and "_target_" in v]


def train(cfg: DictConfig) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = HydraConfig.get().runtime.output_dir
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
        print(f"run directory: {run_dir}")
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    return result.get("miou")


if __name__ == "__main__":
    main()
