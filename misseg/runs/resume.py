"""Nothing overwritten, resume on demand: the run-dir policy and `ckpt_path=last` (no torch import here, so the
entry points refuse a bad command line in well under a second; the checkpoint side is misseg/lit/checkpointing.py).

Resume command (README "Robustness and resume"):

    python -m misseg.train <same overrides> hydra.run.dir=RUN_DIR ckpt_path=last

continues the run in RUN_DIR from RUN_DIR/checkpoints/last.ckpt (model, optimizer, epoch/step counters,
ModelCheckpoint state and the RNG states), so a resumed run reproduces the uninterrupted one on CPU with
trainer.deterministic=true. Starting a new run in a non-empty RUN_DIR without ckpt_path=last is refused.
"""

from __future__ import annotations

from pathlib import Path

from misseg.runs.errors import ConfigError, RunDirError

CHECKPOINT_DIR = "checkpoints"
LAST_NAME = "last.ckpt"
RESUME_LAST = "last"
# what Hydra itself writes into a run directory before the job starts: not a sign of a previous run
HYDRA_OWN = (".hydra",)
HYDRA_OWN_SUFFIXES = (".log",)


def previous_run_entries(run_dir: str | Path) -> list[str]:
    """Names in run_dir that a previous run left (Hydra's own .hydra/ and *.log do not count)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(
        p.name for p in run_dir.iterdir() if p.name not in HYDRA_OWN and not p.name.endswith(HYDRA_OWN_SUFFIXES)
    )


def is_resume(ckpt_path: str | None, run_dir: str | Path) -> bool:
    """Resuming this run: ckpt_path=last, or a checkpoint inside run_dir."""
    if ckpt_path is None:
        return False
    if str(ckpt_path) == RESUME_LAST:
        return True
    return Path(run_dir).resolve() in Path(str(ckpt_path)).expanduser().resolve().parents


def check_run_dir(run_dir: str | Path, ckpt_path: str | None, key: str = "hydra.run.dir") -> None:
    """A run dir holding a previous run is reused only to resume it."""
    entries = previous_run_entries(run_dir)
    if entries and not is_resume(ckpt_path, run_dir):
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise RunDirError(
            f"{key}={run_dir}: holds a previous run ({shown}); resume it with ckpt_path=last, "
            f"or pick a new {key} (the default is a new timestamped directory)"
        )


def find_last_checkpoint(run_dir: str | Path) -> Path:
    """RUN_DIR/checkpoints/last.ckpt, else the newest *.ckpt there; ConfigError when there is none."""
    ckpt_dir = Path(run_dir) / CHECKPOINT_DIR
    last = ckpt_dir / LAST_NAME
    if last.is_file():
        return last
    candidates = sorted(ckpt_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if ckpt_dir.is_dir() else []
    if candidates:
        return candidates[-1]
    raise ConfigError(
        f"ckpt_path=last: no checkpoint in {ckpt_dir}; pass the run to resume as hydra.run.dir=RUN_DIR, "
        "or drop ckpt_path to start a new run"
    )


def resolve_ckpt_path(ckpt_path: str | None, run_dir: str | Path) -> str | None:
    """null -> None (fresh start), 'last' -> the run dir's newest checkpoint, a path -> that file (must exist)."""
    if ckpt_path is None:
        return None
    if str(ckpt_path) == RESUME_LAST:
        return str(find_last_checkpoint(run_dir))
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    return str(path)
