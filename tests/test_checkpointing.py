"""last.ckpt (misseg.lit.checkpointing.ResumeCheckpoint, a Lightning ModelCheckpoint) and label-free model selection."""

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY, run_cli
from pytorch_lightning.utilities.exceptions import SIGTERMException

from misseg.lit.callbacks import NonFiniteGuard
from misseg.lit.checkpointing import AtomicCheckpointIO, ResumeCheckpoint
from misseg.runs.errors import NonFiniteLossError


class Fails(pl.LightningModule):
    """A linear model, 8 batches per epoch, that raises `error` (or returns a NaN loss) at global step `at`."""

    def __init__(self, at: int, error: type[BaseException] | None) -> None:
        super().__init__()
        self.layer, self.at, self.error = torch.nn.Linear(4, 1), at, error

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        if self.global_step == self.at:
            if self.error is not None:
                raise self.error()
            loss = loss * float("nan")
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=2)


def fit(tmp_path, model: pl.LightningModule) -> ResumeCheckpoint:
    last = ResumeCheckpoint(tmp_path / "checkpoints")
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[NonFiniteGuard(), last],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        accelerator="cpu",
        enable_model_summary=False,
    )
    trainer.fit(model)
    return last


def saved_step(tmp_path) -> int:
    return torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def test_last_ckpt_every_epoch_and_nothing_else(tmp_path):
    last = fit(tmp_path, Fails(at=-1, error=None))
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"] and last.path.is_file()
    assert saved_step(tmp_path) == 24


def test_sigterm_saves_last_ckpt_at_that_step(tmp_path):
    with pytest.raises(SIGTERMException):
        fit(tmp_path, Fails(at=10, error=SIGTERMException))
    assert saved_step(tmp_path) == 10


def test_other_exceptions_keep_the_last_good_epoch(tmp_path):
    """Lightning's save_on_exception would write step 12's state for the ValueError; ResumeCheckpoint does not."""
    with pytest.raises(NonFiniteLossError):
        fit(tmp_path, Fails(at=10, error=None))
    assert saved_step(tmp_path) == 8  # the end of epoch 0, not step 10 of the diverged epoch
    with pytest.raises(ValueError):
        fit(tmp_path / "b", Fails(at=12, error=ValueError))
    assert saved_step(tmp_path / "b") == 8


def test_default_selects_no_weights_by_labels_and_gt_best_is_opt_in(tmp_path):
    args = [*TINY, "trainer.max_epochs=2", "data.num_images=8", "data.batch_size=4", "report=false"]
    r = run_cli("-m", "misseg.train", *args, "callbacks=gt_best", f"hydra.run.dir={tmp_path}/gt")
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "gt" / "checkpoints").iterdir())
    assert names == ["best_by_gt_miou.ckpt", "last.ckpt"]
    best = torch.load(tmp_path / "gt" / "checkpoints" / "best_by_gt_miou.ckpt", weights_only=False)
    state = next(v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert state["monitor"] == "val/miou"  # chosen by ground-truth labels, and named for it
    assert torch.load(tmp_path / "gt" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4


def test_max_steps_mid_epoch_still_writes_the_final_step(tmp_path):
    last = ResumeCheckpoint(tmp_path / "checkpoints")
    trainer = pl.Trainer(max_steps=5, callbacks=[last], logger=False, enable_progress_bar=False, accelerator="cpu")
    trainer.fit(Fails(at=-1, error=None))
    assert saved_step(tmp_path) == 5
