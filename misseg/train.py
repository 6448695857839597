"""python -m misseg.train [experiment=NAME] [key=value ...]: train, evaluate, write metrics.json."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from misseg.lit.build import build_module, instantiate_dict, make_datamodule
from misseg.runs.config import config_dir
from misseg.runs.errors import Interrupted, reported_errors, sigterm_raises
from misseg.runs.provenance import update_run_info, write_run_info
from misseg.runs.resume import CHECKPOINT_DIR, check_run_dir, resolve_ckpt_path
from misseg.runs.sweep import run_task
from misseg.runs.validation import check_clusters_match_classes, precheck, validate_train_cfg

# torch / Lightning / the data stack are imported inside the functions that need them: importing them
# takes seconds to tens of seconds, and a bad command line should be refused before that.

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict:
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.utilities import rank_zero_only
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from misseg.diagnostics.evaluation import use_crf_workers
    from misseg.lit.callbacks import NonFiniteGuard, progress_bars
    from misseg.lit.checkpointing import AtomicCheckpointIO, ResumeCheckpoint, RNGStateCheckpoint
    from misseg.models.describe import describe
    from misseg.runs.console import quiet_libraries
    from misseg.runs.results import (
        WEIGHTS_LAST,
        figures_dir,
        format_summary,
        log_final_metrics,
        metrics_record,
        write_metrics,
    )
    from misseg.viz.report import write_report

    quiet_libraries()
    validate_train_cfg(cfg)
    run_dir = HydraConfig.get().runtime.output_dir
    check_run_dir(run_dir, cfg.ckpt_path)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir)
    start = time.time()
    # git commit + fully resolved config next to the results (rank 0 only under DDP); after the run-dir
    # check, which would otherwise see run_info.json and refuse a fresh run dir
    rank_zero_only(write_run_info)(
        run_dir, OmegaConf.to_container(cfg, resolve=True), list(HydraConfig.get().overrides.task), seed=cfg.seed
    )
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(cfg.num_threads)
    use_crf_workers(cfg)  # the CRF target's processes (model.objective.crf_target_weight), when it is on
    datamodule = make_datamodule(cfg.data, run_dir)
    check_clusters_match_classes(cfg.model.get("K"), datamodule.num_classes, cfg.model.get("matching", "hungarian"))
    model = build_module(cfg.model, num_classes=datamodule.num_classes)
    rank_zero_only(print)(describe(model, size=cfg.data.image_size))  # what the encoder sees, measured
    loggers = instantiate_dict(cfg.get("logger"))
    last = ResumeCheckpoint(Path(run_dir) / CHECKPOINT_DIR)
    # after cfg.callbacks: Lightning runs Checkpoint callbacks last, in this order (ModelCheckpoint, then last)
    callbacks = instantiate_dict(cfg.callbacks) + [NonFiniteGuard(), RNGStateCheckpoint(), last]
    callbacks += progress_bars(cfg.trainer.get("enable_progress_bar", True))
    trainer: pl.Trainer = instantiate(
        cfg.trainer, logger=loggers or False, callbacks=callbacks, plugins=[AtomicCheckpointIO()]
    )
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        raise Interrupted(
            f"SIGTERM at step {last.sigterm_step}: saved {last.path}. Resume with: python -m misseg.train "
            f"<same overrides> hydra.run.dir={run_dir} ckpt_path=last"
        ) from None
    result, metrics, metrics_path, figures = {}, {}, None, {}
    interrupted = (
        f"SIGTERM during the final evaluation: training finished and {last.path} holds it. "
        "Evaluate (no further training) with: python -m misseg.train <same overrides> "
        f"hydra.run.dir={run_dir} ckpt_path=last"
    )
    if cfg.evaluate:
        # during validate Lightning runs its own handler (it only sets a flag) and then ours, which raises
        with sigterm_raises(interrupted):
            trainer.loggers = []  # the final evaluation is logged as final/*, not as one more epoch
            trainer.validate(model, datamodule=datamodule, verbose=False)
            trainer.loggers = loggers
            result = dict(model.last_eval)
            if trainer.is_global_zero:
                log_final_metrics(loggers, result, trainer.global_step)
                metrics = metrics_record(result, datamodule.classes, weights=WEIGHTS_LAST)
                metrics_path = write_metrics(run_dir, metrics)
                if cfg.get("report", True):
                    figures = write_report(
                        run_dir,
                        model.predict_maps,
                        datamodule,
                        result,
                        loggers,
                        title=type(model).__name__,
                        out_dir=figures_dir(metrics_path),
                    )
    if trainer.is_global_zero:
        update_run_info(run_dir, status="done", duration_s=round(time.time() - start, 3))
        print(format_summary(metrics, run_dir, metrics_path, figures))
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    # the value Hydra sweepers (Optuna) optimize; in a multirun a failing job is recorded, not fatal
    with reported_errors():
        return run_task(train, cfg, metric=cfg.get("optimized_metric") or "miou")


def _run_dir_policy(cfg: DictConfig) -> None:
    check_run_dir(cfg.hydra.run.dir, cfg.get("ckpt_path"))
    resolve_ckpt_path(cfg.get("ckpt_path"), cfg.hydra.run.dir)


def main(argv: list[str] | None = None) -> None:
    """Validate the command line and the run-dir policy before Hydra creates anything, then run."""
    with reported_errors():
        precheck(config_dir(), "train", sys.argv[1:] if argv is None else argv, validate_train_cfg, _run_dir_policy)
    hydra_main()


if __name__ == "__main__":
    main()
