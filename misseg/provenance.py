"""Reproducibility record of a run: the code version, the resolved config, the command, the timing."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

import misseg

SOURCE_ROOT = Path(misseg.__file__).resolve().parent.parent


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
    """run_dir/config_resolved.yaml (every interpolation resolved) and run_dir/run_info.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config_resolved.yaml").write_text(yaml.safe_dump(resolved_config, sort_keys=False))
    info = {
        "git": git_info(),
        "misseg_version": misseg.__version__ if hasattr(misseg, "__version__") else None,
        "python": sys.version.split()[0],
        "host": platform.node(),
        "argv": sys.argv,
        "overrides": list(overrides),
        "start_time": time.time(),
        **extra,
    }
    path = run_dir / "run_info.json"
    path.write_text(json.dumps(info, indent=2))
    return path


def update_run_info(run_dir: str | Path, **fields) -> Path:
    """Add fields (e.g. status, duration_s) to run_dir/run_info.json, creating it if needed."""
    path = Path(run_dir) / "run_info.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info.update(fields)
    path.write_text(json.dumps(info, indent=2))
    return path
