import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_server import ModuleRunner
from PIL import Image

os.environ.setdefault("WANDB_MODE", "disabled")
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
run_module = ModuleRunner()  # one command server for the whole session, started on first use
# a model small enough for a CLI run of a few steps on CPU in seconds (tests that train through the CLI)
TINY = [
    "model.P=8",
    "model.encoder.depth=2",
    "model.encoder.width=4",
    "model.heads.width=2",
    "model.d=2",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]


def tiny_module(method: str = "mi", *overrides: str, num_classes: int | None = None):
    """A tiny method built the product's way: conf/model/<method>.yaml composed with `overrides` (relative to
    model, e.g. "K=3", "heads.width=2", "model/encoder=timm"), then misseg.lit.build.build_module."""
    from misseg.lit.build import build_module, compose_model

    base = ["P=8", "d=2"]
    if not any(o.startswith("model/encoder=") for o in overrides):
        base += ["encoder.depth=2", "encoder.width=4"]
    if method == "mi":
        base.append("heads.width=2")
    return build_module(compose_model(method, [*base, *overrides]), num_classes)


def make_folder_dataset(root: Path, n: int = 6, size: tuple[int, int] = (40, 52), classes=("a", "b", "c")) -> Path:
    """Tiny folder dataset: left half class 0, right half class 1, a 255 band, random colours."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    h, w = size
    for i in range(n):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[:, w // 2 :] = 1
        mask[: h // 5] = 255
        mask[h - 4 :, : w // 4] = len(classes) - 1
        Image.fromarray(img).save(root / "images" / f"{i:03d}.{'jpg' if i % 2 else 'png'}")
        Image.fromarray(mask).save(root / "masks" / f"{i:03d}.png")
    return root


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    return make_folder_dataset(tmp_path / "ds")


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python ARGS` as subprocess.run(capture_output=True, text=True) gives it; `-m MODULE ...` runs in a fork of
    tests/cli_server.py (torch and Lightning imported once), anything else in a fresh interpreter. env: the whole
    environment (default: this one with W&B disabled)."""
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(REPO)) if env is None else env
    if len(args) >= 2 and args[0] == "-m":
        return run_module(args[1], list(args[2:]), cwd=cwd or REPO, env=env, timeout=timeout)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_consistent_metrics(m: dict) -> None:
    """What is true of any metrics.json, recomputed here from its own confusion matrix and mapping.

    Not `miou <= pa`: that is false in general (confusion [[25, 0, 25], [0, 1, 0], [25, 0, 24]] gives
    PA 0.51, mIoU 0.559; tests/test_metrics.py).
    """
    conf = np.asarray(m["confusion"], dtype=np.int64)  # rows: clusters, columns: classes
    mapping = np.asarray(m["mapping"])
    K, C = conf.shape
    assert len(mapping) == K and ((mapping >= -1) & (mapping < C)).all(), mapping
    if m.get("matching", "hungarian") == "hungarian":  # one-to-one: no class receives two clusters
        assert len(set(mapping[mapping >= 0].tolist())) == int((mapping >= 0).sum()) == min(K, C), mapping
    assert m["num_pixels"] == conf.sum()
    hit = sum(int(conf[k, c]) for k, c in enumerate(mapping) if c >= 0)
    assert 0 <= m["pa"] <= 1 and abs(m["pa"] - hit / conf.sum()) < 1e-9
    ious = []
    for c in range(C):  # IoU of class c: pixels of the clusters mapped to c vs pixels of class c
        pred_c = conf[mapping == c].sum(0)
        tp, union = int(pred_c[c]), int(pred_c.sum() + conf[:, c].sum() - pred_c[c])
        ious.append(tp / union if union else float("nan"))
    assert np.allclose(m["per_class_iou"], ious, equal_nan=True)
    assert 0 <= m["miou"] <= 1 and abs(m["miou"] - np.nanmean(ious)) < 1e-9
