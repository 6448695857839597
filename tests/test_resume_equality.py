"""Resume equality on CPU: train 2 epochs  ==  train 1 epoch, then resume from its checkpoint to 2 epochs."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY as BASE_TINY
from conftest import run_cli

TINY = [
    *BASE_TINY,
    "data.num_images=8",
    "data.batch_size=4",
    "trainer.deterministic=true",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("resume")
    for args in (
        ["trainer.max_epochs=2", f"hydra.run.dir={tmp}/full"],
        ["trainer.max_epochs=1", f"hydra.run.dir={tmp}/part"],
        ["trainer.max_epochs=2", f"ckpt_path={tmp}/part/checkpoints/last.ckpt", f"hydra.run.dir={tmp}/part"],
    ):
        r = run_cli("-m", "misseg.train", *TINY, *args)
        assert r.returncode == 0, r.stderr[-3000:]
    return tmp


def load(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_resume_continues_from_the_checkpoint(runs):
    full, resumed = load(runs / "full"), load(runs / "part")
    assert (full["epoch"], full["global_step"]) == (resumed["epoch"], resumed["global_step"]) == (1, 4)
    epochs = [line.split(",")[0] for line in (runs / "part" / "csv" / "metrics.csv").read_text().splitlines()[1:]]
    assert "1" in epochs  # the second epoch was trained by the resumed process


def test_resumed_run_equals_the_uninterrupted_run(runs):
    """Exact only because misseg.lit.checkpointing.RNGStateCheckpoint stores the RNG states (Lightning does not)."""
    full, resumed = load(runs / "full"), load(runs / "part")
    assert full["state_dict"].keys() == resumed["state_dict"].keys()
    for name, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][name]), name
    adam_full, adam_resumed = (ckpt["optimizer_states"][0]["state"] for ckpt in (full, resumed))
    for a, b in zip(adam_full.values(), adam_resumed.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    m_full = json.loads((runs / "full" / "metrics.json").read_text())
    # metrics.json of the 1-epoch run is never overwritten: the resumed run writes metrics-1.json beside it
    m_resumed = json.loads((runs / "part" / "metrics-1.json").read_text())
    assert m_full == m_resumed  # pa, miou, per-class IoU, mapping, confusion matrix


def test_resumed_run_writes_its_figures_beside_its_own_metrics(runs):
    """Nothing overwritten: the first start's figures/ stay, the resumed start's go to figures-1/."""
    from misseg.runs.results import figures_dir

    part = runs / "part"
    assert figures_dir(part / "metrics-1.json") == part / "figures-1"
    assert figures_dir(part / "metrics.json") == part / "figures"
    for folder in ("figures", "figures-1"):
        assert (part / folder / "qualitative.png").is_file(), folder
