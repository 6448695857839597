"""Hydra multirun: run dirs + summary table, non-fatal failures, Optuna, submitit (local, SLURM config), W&B."""

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, assert_consistent_metrics, run_cli
from conftest import TINY as BASE_TINY
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from misseg.runs.config import config_dir
from misseg.runs.provenance import git_info
from misseg.runs.sweep import collect_jobs, write_summary

TINY = [
    *BASE_TINY,
    "trainer.max_steps=2",
    "data.num_images=8",
    "data.batch_size=4",
]


def run_train(tmp: Path, *args: str, wandb_mode: str = "disabled", timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        WANDB_MODE=wandb_mode,
        PYTHONPATH=str(REPO),
        WANDB_CONFIG_DIR=str(tmp / "wandb_config"),
        WANDB_CACHE_DIR=str(tmp / "wandb_cache"),
    )
    env.pop("WANDB_API_KEY", None)
    # run_cli's stdin is /dev/null: a login prompt would fail the run instead of hanging it
    flags = [a for a in args if a.startswith("-")]  # Hydra's argparse wants -m before the overrides
    overrides = [a for a in args if not a.startswith("-")]
    return run_cli("-m", "misseg.train", *flags, *TINY, *overrides, env=env, timeout=timeout)


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- the summary table (pure, no training)


def fake_job(root: Path, name: str, overrides: list[str], metrics: dict | None = None, error: str | None = None):
    (root / name / ".hydra").mkdir(parents=True)
    (root / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (root / name / "metrics.json").write_text(json.dumps(metrics))
        (root / name / "run_info.json").write_text(json.dumps({"duration_s": 1.5}))
    if error is not None:
        (root / name / "failed.json").write_text(json.dumps({"error": error, "traceback": "..."}))


def test_summary_lists_ok_failed_and_incomplete_jobs_in_job_order(tmp_path):
    fake_job(tmp_path, "10", ["model.K=8", "seed=0"], metrics={"pa": 0.9, "miou": 0.7})
    fake_job(tmp_path, "2", ["model.K=4", "seed=0"], metrics={"pa": 0.8, "miou": 0.5})
    fake_job(tmp_path, "0", ["model.K=2", "seed=0"], error="ValueError: model.K=2 is bad\nmore")
    fake_job(tmp_path, "1", ["model.K=3", "seed=0"])
    assert [r["job"] for r in collect_jobs(tmp_path)] == ["0", "1", "2", "10"]
    csv_path, md_path = write_summary(tmp_path)
    rows = read_csv(csv_path)
    assert [(r["job"], r["status"], r["model.K"], r["miou"]) for r in rows] == [
        ("0", "failed", "2", ""),
        ("1", "incomplete", "3", ""),
        ("2", "ok", "4", "0.5000"),
        ("10", "ok", "8", "0.7000"),
    ]
    assert rows[0]["error"] == "ValueError: model.K=2 is bad" and rows[3]["time_s"] == "1.5000"
    md = md_path.read_text()
    assert "4 jobs: 2 ok, 1 failed, 1 incomplete" in md and "Fixed overrides: `seed=0`" in md
    table = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[0] for line in table] == ["| 10", "| 2", "| 0", "| 1"]  # best mIoU first


def test_sweep_cli_rebuilds_the_summary(tmp_path):
    fake_job(tmp_path, "0", ["model.K=2"], metrics={"pa": 0.5, "miou": 0.25})
    r = run_cli("-m", "misseg.runs.sweep", str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "0.2500" in r.stdout and (tmp_path / "summary.csv").is_file()


# ---------------------------------------------------------------- a real 4-point sweep of the demo, W&B offline


@pytest.fixture(scope="module")
def demo_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    r = run_train(
        tmp,
        "-m",
        "logger=many",
        "model.tau=0.05,0.2",
        "data.augment.jitter=0.0,0.4",
        f"hydra.sweep.dir={tmp}/sweep",
        wandb_mode="offline",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "sweep", r


def test_four_point_sweep_gives_four_run_dirs_and_one_summary(demo_sweep):
    sweep, r = demo_sweep
    runs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert runs == ["0", "1", "2", "3"]
    for run in runs:
        m = json.loads((sweep / run / "metrics.json").read_text())
        assert_consistent_metrics(m)
        assert (sweep / run / "checkpoints" / "last.ckpt").is_file()
    rows = read_csv(sweep / "summary.csv")
    assert {(row["model.tau"], row["data.augment.jitter"]) for row in rows} == {
        ("0.05", "0.0"),
        ("0.05", "0.4"),
        ("0.2", "0.0"),
        ("0.2", "0.4"),
    }
    assert all(row["status"] == "ok" and float(row["time_s"]) > 0 for row in rows)
    for row in rows:  # the table holds each run's metrics.json values
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert float(row["miou"]) == pytest.approx(metrics["miou"], abs=1e-4)
    md = (sweep / "summary.md").read_text()
    assert "4 jobs: 4 ok, 0 failed" in md and "| model.tau | data.augment.jitter |" in md
    assert f"sweep summary: {sweep}/summary.md" in r.stdout


def test_each_sweep_point_records_git_commit_and_resolved_config(demo_sweep):
    sweep, _ = demo_sweep
    info = json.loads((sweep / "2" / "run_info.json").read_text())
    assert info["git"] == git_info() and info["git"]["commit"] and len(info["git"]["commit"]) == 40
    assert info["status"] == "done" and info["seed"] == 0 and "model.tau=0.2" in info["overrides"]
    text = (sweep / "2" / "config_resolved.yaml").read_text()
    resolved = yaml.safe_load(text)
    assert "${" not in text and resolved["model"]["tau"] == 0.2 and resolved["data"]["augment"]["jitter"] == 0.0
    assert resolved["trainer"]["default_root_dir"] == str(sweep / "2")


def test_wandb_one_offline_run_per_sweep_point_grouped_and_tagged(demo_sweep):
    sweep, _ = demo_sweep
    group = f"train-{sweep.name}"
    ids = set()
    for job in range(4):
        (run,) = (sweep / str(job) / "wandb").glob("offline-run-*")  # offline by default: nothing was sent
        (record,) = run.glob("run-*.wandb")
        ids.add(record.stem)
        data = record.read_bytes()  # the run's protobuf records: group, name, tags, config, per-epoch metrics
        for needle in (group, f"{group}-{job}", '["demo"]', "val/miou", '"negatives":"local"'):
            assert needle.encode() in data, (job, needle)
    assert len(ids) == 4  # one W&B run per sweep point, not one shared run


def test_wandb_group_and_name_outside_a_sweep():
    from misseg.runs.sweep import run_name, sweep_group

    assert sweep_group("train") is None and run_name("train") == "train"  # no Hydra context: plain values


# ---------------------------------------------------------------- Optuna


def test_optuna_search_maximizes_miou_over_two_trials(tmp_path):
    r = run_train(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}/opt")
    assert r.returncode == 0, r.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "opt" / "optimization_results.yaml").read_text())
    rows = read_csv(tmp_path / "opt" / "summary.csv")
    assert len(rows) == 2 and {"model.tau", "model.P", "model.lr", "data.augment.jitter"} <= set(rows[0])
    assert best["best_value"] == pytest.approx(max(float(row["miou"]) for row in rows), abs=1e-4)
    # model.P=8 on the command line (TINY) fixes P: it leaves the search space
    assert set(best["best_params"]) == {"model.tau", "model.lr", "data.augment.jitter"}
    assert {row["model.P"] for row in rows} == {"8"}


def test_optuna_config_composes():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.optimized_metric == "miou" and cfg.hydra.sweeper.direction == "maximize"
    assert "optuna" in cfg.hydra.sweeper._target_ and "data.augment.jitter" in cfg.hydra.sweeper.params


# ---------------------------------------------------------------- submitit: SLURM config, local executor


def test_slurm_launcher_config_renders_one_gpu_per_ddp_task(monkeypatch):
    from submitit.slurm.slurm import SlurmExecutor

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["gpus_per_node"] == launcher["tasks_per_node"] == 4 and launcher["partition"] == "gpu"
    # the sbatch script the launcher would submit (submitit refuses to build an executor without srun)
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = SlurmExecutor(folder="/tmp/submitit-test")
    skip = {"_target_", "submitit_folder", "max_num_timeout"}
    executor.update_parameters(**executor._convert_parameters({k: v for k, v in launcher.items() if k not in skip}))
    sbatch = executor._make_submission_file_text("python -m misseg.train", "uid")
    for line in ("--gpus-per-node=4", "--ntasks-per-node=4", "--partition=gpu", "--time=240", "--nodes=1"):
        assert f"#SBATCH {line}" in sbatch


def test_submitit_local_runs_sweep_points_and_records_a_failing_one(tmp_path):
    r = run_train(
        tmp_path,
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "model.objective.negatives=local,bogus",
        f"hydra.sweep.dir={tmp_path}/sub",
    )
    assert r.returncode == 0, r.stderr[-3000:]  # the failing point did not kill the sweep
    rows = read_csv(tmp_path / "sub" / "summary.csv")
    assert [(row["model.objective.negatives"], row["status"]) for row in rows] == [("local", "ok"), ("bogus", "failed")]
    assert "model.objective.negatives='bogus'" in rows[1]["error"] and rows[1]["miou"] == ""
    failed = json.loads((tmp_path / "sub" / "1" / "failed.json").read_text())
    assert failed["error"].startswith("ConfigError") and "Traceback" in failed["traceback"]
    assert "1 failed" in (tmp_path / "sub" / "summary.md").read_text()


def test_a_single_run_still_fails_loudly(tmp_path):
    r = run_train(tmp_path, "model.objective.negatives=bogus", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode != 0 and "model.objective.negatives='bogus'" in r.stderr
    assert not (tmp_path / "run" / "failed.json").exists()
