"""Loggers: W&B that never prompts for a login; a CSV logger that keeps its history across resumes."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


def wandb_credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def make_wandb_logger(offline: bool | None = None, **kwargs):
    """WandbLogger, offline unless credentials exist (or WANDB_MODE says otherwise); never blocks on input."""
    from pytorch_lightning.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    if offline is None:
        offline = os.environ.get("WANDB_MODE", "") != "online" and not wandb_credentials_present()
    if offline and os.environ.get("WANDB_MODE") != "disabled":
        os.environ["WANDB_MODE"] = "offline"
    Path(kwargs.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=offline, **kwargs)


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, but a resumed run appends to metrics.csv instead of deleting it.

    Every row carries `start` (0 = the first start, 1 = the first resume, ...): the steps between the last
    checkpoint and a crash are trained again after a resume, and both records are kept, told apart by it.
    hparams.yaml of a resumed start goes to hparams-<start>.yaml (the first one is never overwritten).
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self.start = 0
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                reader = csv.DictReader(f)
                # the header of the file on disk: new keys extend it (Lightning rewrites the header then)
                self.metrics_keys = list(reader.fieldnames or [])
                starts = [int(row["start"]) for row in reader if (row.get("start") or "").isdigit()]
            self.start = max(starts, default=0) + 1

    def _check_log_dir_exists(self) -> None:
        """Lightning deletes metrics.csv here ("Previous log files ... will be deleted"); misseg keeps it.
        A fresh run never finds one: misseg.runs.resume refuses a non-empty run dir unless resuming."""

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        super().log_metrics({**metrics_dict, "start": self.start}, step)

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        name = self.NAME_HPARAMS_FILE if self.start == 0 else f"hparams-{self.start}.yaml"
        save_hparams_to_yaml(os.path.join(self.log_dir, name), self.hparams)


class ResumableCSVLogger(CSVLogger):
    """CSVLogger (conf/logger/csv.yaml) whose metrics.csv survives `ckpt_path=last`: see AppendingExperimentWriter."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
