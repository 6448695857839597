"""Hydra multirun support: non-fatal failing jobs, the sweep summary table, W&B group/run names.

python -m misseg.runs.sweep SWEEP_DIR   rebuilds SWEEP_DIR/summary.csv and summary.md (e.g. after a killed sweep).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from misseg.runs.provenance import update_run_info

log = logging.getLogger(__name__)

SUMMARY_METRICS = ("pa", "miou")


# ---------------------------------------------------------------- the job side (inside misseg.train)


def _hydra() -> DictConfig | None:
    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun() -> bool:
    hc = _hydra()
    return hc is not None and hc.mode == RunMode.MULTIRUN


def sweep_group(task_name: str) -> str | None:
    """W&B group of a sweep point: "<task>-<sweep dir name>" (the sweep's start time); None outside a sweep."""
    hc = _hydra()
    if hc is None or hc.mode != RunMode.MULTIRUN:
        return None
    return f"{task_name}-{Path(hc.sweep.dir).name}"


def run_name(task_name: str) -> str:
    """W&B run name: "<group>-<job num>" in a sweep, "<task>-<run dir name>" otherwise."""
    hc = _hydra()
    if hc is None:
        return task_name
    if hc.mode == RunMode.MULTIRUN:
        return f"{sweep_group(task_name)}-{hc.job.num}"
    return f"{task_name}-{Path(hc.runtime.output_dir).name}"


# resolvers used by conf/logger/wandb.yaml; registered when misseg.train imports this module
for _name, _fn in (("misseg.sweep_group", sweep_group), ("misseg.run_name", run_name)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain: the ValueError behind Hydra's InstantiationException, say."""
    seen = {id(error)}
    while (error.__cause__ or error.__context__) is not None and id(error.__cause__ or error.__context__) not in seen:
        error = error.__cause__ or error.__context__
        seen.add(id(error))
    return error


def write_failure(run_dir: str | Path, error: BaseException) -> Path:
    """run_dir/failed.json: "error" = the root cause ("ValueError: ..."), "raised" = the outer error, traceback."""
    path = Path(run_dir) / "failed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    cause = root_cause(error)
    out = {"error": f"{type(cause).__name__}: {cause}", "raised": f"{type(error).__name__}: {error}", "traceback": tb}
    path.write_text(json.dumps(out, indent=2))
    return path


def run_task(task: Callable[[DictConfig], dict], cfg: DictConfig, metric: str = "miou") -> float | None:
    """Run task(cfg) and return result[metric] (what Hydra sweepers such as Optuna optimize).

    In a multirun an exception does not propagate: Hydra's sweepers would stop the whole sweep (and skip
    the summary). It is written to the job's failed.json and logged, and the job returns NaN, which
    Optuna records as a failed trial. A single run still raises.
    """
    failed = True
    try:
        result = task(cfg)
        failed = False
    except Exception as error:
        if not is_multirun():
            raise
        run_dir = HydraConfig.get().runtime.output_dir
        write_failure(run_dir, error)
        update_run_info(run_dir, status="failed")
        log.error("sweep job failed, recorded in %s/failed.json:\n%s", run_dir, traceback.format_exc())
        return math.nan
    finally:
        finish_wandb(failed)
    value = result.get(metric)
    return None if value is None else float(value)


def finish_wandb(failed: bool = False) -> None:
    """Close the W&B run of this job, so the next sweep point in the same process starts a new run.

    (Lightning's WandbLogger would otherwise attach every later job to the first job's run.)
    """
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


# ---------------------------------------------------------------- the sweep side (summary at the sweep root)


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def collect_jobs(sweep_dir: str | Path) -> list[dict]:
    """One row per job dir (a dir with .hydra/overrides.yaml) under sweep_dir, in job order.

    Row: job, status (ok | failed | incomplete), overrides {key: value}, pa, miou, time_s, error, run_dir.
    "incomplete" = neither metrics.json nor failed.json: still running, killed, or evaluate=false.
    """
    sweep_dir = Path(sweep_dir)
    rows = []
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml"), key=_natural_key):
        run_dir = overrides_file.parent.parent
        if ".submitit" in run_dir.parts:
            continue
        overrides = yaml.safe_load(overrides_file.read_text()) or []
        metrics, info = _read_json(run_dir / "metrics.json"), _read_json(run_dir / "run_info.json")
        failed = _read_json(run_dir / "failed.json")
        status = "failed" if failed else "ok" if metrics else "incomplete"
        rows.append(
            {
                "job": str(run_dir.relative_to(sweep_dir)),
                "status": status,
                "overrides": dict(o.split("=", 1) if "=" in o else (o, "") for o in overrides),
                **{m: metrics.get(m) for m in SUMMARY_METRICS},
                "time_s": info.get("duration_s"),
                "error": (failed.get("error") or "").splitlines()[0][:300] if failed else "",
                "run_dir": str(run_dir),
            }
        )
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if not math.isnan(value) else "nan"
    return str(value)


def _fmt_cell(value: Any) -> str:
    """A summary.md cell: metrics as _fmt; an override value that is a float (Optuna samples such as
    model.lr=0.00012345678901234567) to 4 significant digits. summary.csv keeps the full values."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)", value.strip()):
        return f"{float(value):.4g}"
    return _fmt(value)


def write_summary(sweep_dir: str | Path) -> tuple[Path, Path]:
    """sweep_dir/summary.csv (every override key) and summary.md (varying keys; best mIoU first)."""
    sweep_dir = Path(sweep_dir)
    rows = collect_jobs(sweep_dir)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row["overrides"] if k not in keys]
    columns = ["job", "status", *keys, *SUMMARY_METRICS, "time_s", "error", "run_dir"]
    csv_path = sweep_dir / "summary.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            flat = {**row, **row["overrides"]}
            writer.writerow([_fmt(flat.get(c)) for c in columns])

    varying = [k for k in keys if len({row["overrides"].get(k) for row in rows}) > 1]
    fixed = [f"{k}={rows[0]['overrides'][k]}" for k in keys if k not in varying and k in rows[0]["overrides"]]
    ranked = sorted(rows, key=lambda r: (r["status"] != "ok", -(r["miou"] if r["miou"] is not None else -1.0)))
    md_cols = ["job", "status", *varying, *SUMMARY_METRICS, "time_s", "error"]
    lines = [f"# Sweep {sweep_dir}", ""]
    n_ok = sum(r["status"] == "ok" for r in rows)
    lines.append(
        f"{len(rows)} jobs: {n_ok} ok, {sum(r['status'] == 'failed' for r in rows)} failed, "
        f"{sum(r['status'] == 'incomplete' for r in rows)} incomplete. Sorted by mIoU."
    )
    if fixed:
        lines.append(f"Fixed overrides: `{' '.join(fixed)}`")
    lines += ["", "| " + " | ".join(md_cols) + " |", "|" + "---|" * len(md_cols)]
    for row in ranked:
        flat = {**row, **row["overrides"]}
        lines.append("| " + " | ".join(_fmt_cell(flat.get(c)).replace("|", "\\|") for c in md_cols) + " |")
    md_path = sweep_dir / "summary.md"
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


class SweepSummary(Callback):
    """Hydra callback (conf/hydra/default.yaml): writes summary.csv/.md at the sweep root when a multirun ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        csv_path, md_path = write_summary(sweep_dir)
        log.info("sweep summary: %s (%s)", md_path, csv_path)
        print(f"sweep summary: {md_path}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        raise SystemExit("usage: python -m misseg.runs.sweep SWEEP_DIR  (a Hydra multirun directory)")
    _, md_path = write_summary(args[0])
    print(md_path.read_text())


if __name__ == "__main__":
    main()
