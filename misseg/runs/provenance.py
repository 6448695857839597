"""Reproducibility record of a run: the code version, the resolved config, the command, the timing."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

import misseg
from misseg.runs.results import new_file

SOURCE_ROOT = Path(misseg.__file__).resolve().parent.parent


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one, as under SLURM or taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def git_info(repo: str | Path = SOURCE_ROOT) -> dict:
    """{"commit": sha or None, "dirty": bool or None} of the checkout misseg was imported from.

    None when misseg runs from an installed wheel or git is missing: a run must never fail for this.
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def write_run_info(run_dir: str | Path, resolved_config: dict, overrides: list[str], **extra) -> Path:
    """run_dir/config_resolved.yaml (every interpolation resolved) and run_dir/run_info.json.

    run_info.json keeps the first start's fields at the top level and every start (the first one, then each
    resume with ckpt_path=last) in `starts`: time, command, overrides, code version, host, resolved config
    file, and once it ends its status and duration. A resume never replaces the record of an earlier start:
    its resolved config goes to config_resolved-1.yaml, -2, ...
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = new_file(run_dir / "config_resolved.yaml")
    config_path.write_text(yaml.safe_dump(resolved_config, sort_keys=False))
    start = {
        "start_time": time.time(),
        "argv": sys.argv,
        "overrides": list(overrides),
        "git": git_info(),
        "host": platform.node(),
        "cores": available_cores(),  # wall times of runs side by side or on other nodes compare only with this
        "config": config_path.name,
        **extra,
    }
    path = run_dir / "run_info.json"
    if path.is_file():  # a resume: append this start
        info = json.loads(path.read_text())
        info.setdefault("starts", [_legacy_start(info)]).append(start)
        info["status"] = "running"
    else:
        info = {
            "git": start["git"],
            "misseg_version": misseg.__version__ if hasattr(misseg, "__version__") else None,
            "python": sys.version.split()[0],
            "host": start["host"],
            "argv": sys.argv,
            "overrides": list(overrides),
            "start_time": start["start_time"],
            **extra,
            "starts": [start],
        }
    path.write_text(json.dumps(info, indent=2))
    return path


def _legacy_start(info: dict) -> dict:
    """The one start a run_info.json written before `starts` existed describes."""
    keys = ("start_time", "argv", "overrides", "git", "host", "status", "duration_s")
    return {k: info[k] for k in keys if k in info}


def update_run_info(run_dir: str | Path, **fields) -> Path:
    """Record fields (e.g. status, duration_s) of the current start in run_dir/run_info.json, creating it if
    needed. The top level gets the fields too, with duration_s = the sum over the starts that recorded one
    (the total time spent on the run; a start killed by kill -9 records none)."""
    path = Path(run_dir) / "run_info.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    starts = info.get("starts")
    if starts:
        starts[-1].update(fields, end_time=time.time())
    info.update(fields)
    if starts and "duration_s" in fields:
        info["duration_s"] = round(sum(s.get("duration_s", 0.0) for s in starts), 3)
    path.write_text(json.dumps(info, indent=2))
    return path
