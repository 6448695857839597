import json
from pathlib import Path

import pytest
from conftest import TINY, assert_consistent_metrics, run_cli
from hydra import compose, initialize_config_dir

from misseg.runs.config import config_dir


def experiments() -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", experiments())
def test_every_experiment_composes(name):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
    assert cfg.model._target_ and cfg.data._target_ and cfg.trainer._target_
    assert cfg.data.batch_size >= 2


def test_paper_experiments_keep_paper_hyperparameters():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        for name, K in (("coco_stuff15", 15), ("coco_stuff27", 27), ("coco_persons", 2)):
            cfg = compose("train", overrides=[f"experiment={name}"])
            assert (cfg.model.K, cfg.model.P, cfg.data.batch_size, cfg.model.lr) == (K, 2048, 64, 1e-4)
            assert cfg.model.tau is None and cfg.trainer.max_epochs == 300


def read_metrics(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    assert set(m) >= {"pa", "miou", "per_class_iou", "mapping", "num_pixels", "num_images"}
    return m


def test_demo_trains_two_steps_and_writes_metrics(tmp_path):
    r = run_cli(
        "-m",
        "misseg.train",
        *TINY,
        "trainer.max_steps=2",
        "data.num_images=8",
        "data.batch_size=4",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_metrics(tmp_path / "run")
    assert m["num_images"] == 8 and m["num_pixels"] == 8 * 64 * 64
    assert_consistent_metrics(m)
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["last.ckpt"]  # label-free default
    assert f"run directory: {tmp_path}/run" in r.stdout

    r = run_cli(
        "-m",
        "misseg.evaluate",
        f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt",
        "data.num_images=8",
        f"hydra.run.dir={tmp_path}/eval",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    evaluated = read_metrics(tmp_path / "eval")
    # the same numbers; only the record of which weights were scored differs
    assert (m.pop("weights"), evaluated.pop("weights")) == ("last", f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt")
    assert evaluated == m


def test_folder_experiment_trains_on_a_tiny_dataset(tmp_path, folder_dataset):
    r = run_cli(
        "-m",
        "misseg.train",
        "experiment=folder",
        f"data.root={folder_dataset}",
        *TINY,
        "data.image_size=16",
        "data.batch_size=2",
        "data.num_workers=0",
        "trainer.max_steps=2",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_metrics(tmp_path / "run")
    assert m["num_images"] == 6 and len(m["per_class_iou"]) == 3 and len(m["mapping"]) == 3


def test_training_uses_torch_deterministic_kernels_unless_told_not_to(tmp_path, monkeypatch):
    """conf/trainer/default.yaml: deterministic=warn, torch's deterministic kernels where it has them and a warning
    where it has none (without them the correspondence lever's backward is not bit-identical run to run on 2 CPU
    threads; experiments/scale section 61); trainer.deterministic=false gives torch's defaults back."""
    import torch
    from hydra.utils import instantiate

    # what the Trainer sets besides torch's flag, given back after the test (run_cli copies os.environ)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
    try:
        for override, warn_only in (([], True), (["trainer.deterministic=false"], None)):
            with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
                cfg = compose("train", overrides=["trainer.accelerator=cpu", *override])
            instantiate(cfg.trainer, logger=False, default_root_dir=str(tmp_path), enable_progress_bar=False)
            assert torch.are_deterministic_algorithms_enabled() == (warn_only is not None), override
            assert torch.is_deterministic_algorithms_warn_only_enabled() == bool(warn_only), override
    finally:
        torch.use_deterministic_algorithms(False)
