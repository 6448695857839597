"""Issue 7, crashes, end to end with real processes on CPU: kill -9 then the documented resume command gives
the same final metrics as an uninterrupted run; SIGTERM saves a checkpoint and exits cleanly (status 143).

The three trainings (reference, kill -9 victim, SIGTERM victim) start together to keep the wall time down.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY, run_cli

# 16 images / batch 4 = 4 steps per epoch, 6 epochs; deterministic kernels so two runs can be compared exactly
E2E = [
    *TINY,
    "trainer.deterministic=true",
    "data.num_images=16",
    "data.batch_size=4",
    "data.eval_batch_size=16",
    "trainer.max_epochs=6",
]
STEPS = 6 * 4
# The SIGTERM victim trains longer (nothing compares it to the reference): on an idle machine a 6-epoch run can
# finish training between its first checkpoint and the signal, and then the signal would miss the training loop.
TERM = ["trainer.max_epochs=30"]
TERM_STEPS = 30 * 4


def start(run_dir: Path, extra: list[str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(REPO))
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = open(run_dir.parent / f"{run_dir.name}.stderr", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "misseg.train", *E2E, *(extra or []), f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def wait_until(done, what: str, run_dir: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Poll `done()` while the run is alive; `what` names it in the failure."""
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, f"run ended before {what}:\n{stderr_of(run_dir)[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} in time"
        time.sleep(0.02)


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen) -> None:
    """The run's first checkpoint (written atomically: once visible it is complete)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    wait_until(last.exists, "its first checkpoint", run_dir, proc)


def wait_for_csv_rows(run_dir: Path, proc: subprocess.Popen) -> None:
    """A row of the CSV history on disk: the logger flushes at the epoch's end, just after the checkpoint, and on a
    loaded machine a kill right after the checkpoint lands before any row exists (then there is nothing to keep,
    and the test would check nothing)."""
    history = run_dir / "csv" / "metrics.csv"
    wait_until(lambda: history.exists() and len(history.read_text().splitlines()) > 1, "its CSV history", run_dir, proc)


def stderr_of(run_dir: Path) -> str:
    return (run_dir.parent / f"{run_dir.name}.stderr").read_text()


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Reference, kill -9 and SIGTERM runs started together; the victims are hit after their first checkpoint."""
    root = tmp_path_factory.mktemp("e2e")
    runs = {name: root / name for name in ("reference", "killed", "terminated")}
    procs = {name: start(path, TERM if name == "terminated" else None) for name, path in runs.items()}
    for name, sig in (("killed", signal.SIGKILL), ("terminated", signal.SIGTERM)):
        wait_for_checkpoint(runs[name], procs[name])
        if name == "killed":  # its history up to the kill is what the test checks is kept
            wait_for_csv_rows(runs[name], procs[name])
        procs[name].send_signal(sig)
    codes = {name: proc.wait(timeout=600) for name, proc in procs.items()}
    return runs, codes


def test_kill_9_then_resume_gives_the_metrics_of_an_uninterrupted_run(interrupted):
    runs, codes = interrupted
    run = runs["killed"]
    assert codes["reference"] == 0, stderr_of(runs["reference"])[-3000:]
    assert codes["killed"] == -signal.SIGKILL, "the run finished before kill -9 reached it"
    assert not (run / "metrics.json").exists()
    step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < step < STEPS  # a real mid-run kill: there is training left to redo

    # the documented resume command: same overrides + hydra.run.dir=RUN_DIR ckpt_path=last
    r = run_cli("-m", "misseg.train", *E2E, f"hydra.run.dir={run}", "ckpt_path=last", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Restored all states from the checkpoint" in r.stdout + r.stderr
    assert metrics(run) == metrics(runs["reference"])
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STEPS

    # nothing lost (issue 13): the killed start's CSV history up to its checkpoint is kept beside the resumed
    # one, and run_info.json lists both starts (the killed one without an end)
    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["start"] for row in rows} == {"0", "1"}
    assert any(row["start"] == "0" and row["epoch"] == "0" and row["val/miou"] for row in rows)
    starts = json.loads((run / "run_info.json").read_text())["starts"]
    assert len(starts) == 2 and "status" not in starts[0] and starts[1]["status"] == "done"


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(interrupted):
    runs, codes = interrupted
    run = runs["terminated"]
    err = stderr_of(run)
    assert codes["terminated"] == 143, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1, err[-3000:]
    saved = run / "checkpoints" / "last.ckpt"
    step = torch.load(saved, weights_only=True)["global_step"]
    assert lines[0].startswith(f"interrupted: SIGTERM at step {step}: saved {saved}.")
    assert f"hydra.run.dir={run} ckpt_path=last" in lines[0]
    assert 0 < step < TERM_STEPS

    r = run_cli("-m", "misseg.train", *E2E, *TERM, f"hydra.run.dir={run}", "ckpt_path=last", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(saved, weights_only=True)["global_step"] == TERM_STEPS and (run / "metrics.json").is_file()
