"""python -m misseg.evaluate ckpt_path=PATH [data overrides]: Hungarian-matched PA/mIoU -> metrics.json."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from misseg.config import config_dir
from misseg.report import write_report
from misseg.runs import write_metrics
from misseg.segmodule import DEFAULT_CLASS, SegmentationModule


def load_module(ckpt_path: str | Path, **overrides) -> SegmentationModule:
    """Any misseg method's checkpoint (the class is recorded in it by SegmentationModule.on_save_checkpoint)."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    class_path = torch.load(path, map_location="cpu", weights_only=False).get("misseg_class", DEFAULT_CLASS)
    return get_class(class_path).load_from_checkpoint(path, map_location="cpu", **overrides)


def evaluate(cfg: DictConfig) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = HydraConfig.get().runtime.output_dir
    datamodule = instantiate(cfg.data)
    module = load_module(cfg.ckpt_path, num_classes=datamodule.num_classes, matching=cfg.matching)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.validate(module, datamodule=datamodule, verbose=False)
    result = dict(module.last_eval)
    if trainer.is_global_zero:
        write_metrics(run_dir, result, datamodule.classes)
        if cfg.get("report", True):
            write_report(run_dir, module.predict_maps, datamodule, result, title=type(module).__name__)
        print(f"run directory: {run_dir}")
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    return evaluate(cfg).get("miou")


if __name__ == "__main__":
    main()
