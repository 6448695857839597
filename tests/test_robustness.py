"""Issue 7: bad configs, bad files, NaN, crashes, overwrites, untrusted checkpoints -> one clear line each.

The entry points run in-process here (misseg.train.main / misseg.evaluate.main with an argv) to keep the
suite fast; tests/test_resume_e2e.py drives real subprocesses (exit status, signals, kill -9)."""

import ast
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import REPO, TINY, make_folder_dataset, run_cli
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from misseg import evaluate as evaluate_cli
from misseg import train as train_cli
from misseg.data.datamodule import FolderDataModule
from misseg.data.scan import BadFilesError, scan_folder
from misseg.lit.callbacks import NonFiniteGuard
from misseg.lit.checkpointing import AtomicCheckpointIO, RNGStateCheckpoint, atomic_torch_save
from misseg.objectives.mi import mi_objective
from misseg.runs.errors import Interrupted, NonFiniteLossError, sigterm_raises
from misseg.runs.results import new_file, write_metrics
from misseg.runs.resume import check_run_dir, find_last_checkpoint


def run_main(entry, argv: list[str], capsys) -> tuple[int, str]:
    """Run an entry point in this process like `python -m misseg.X argv` -> (exit status, stderr)."""
    old = sys.argv
    sys.argv = [entry.__name__, *argv]
    try:
        entry.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old
        GlobalHydra.instance().clear()
    return code, capsys.readouterr().err


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(("error:", "interrupted:"))]
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    return lines[0]


# ------------------------------------------------------------------ 1. config validation before any compute

BAD_CONFIGS = [
    (["model.K=1"], ["model.K=1", ">= 2"]),
    (
        ["model.objective.negatives=own_image", "model.objective.negative_positions=shuffled"],
        ["model.objective.negative_positions=shuffled", "negatives=own_image", "use negative_positions=same"],
    ),
    (["model.objective.critic=cosine"], ["model.objective.critic='cosine'", "use one of dot, affine"]),
    (["model.K=5"], ["model.K=5", "Hungarian", "(4)"]),  # synthetic data has 4 classes
    (["model.tau=0"], ["model.tau=0", "> 0"]),
    (["model.tau=-1"], ["model.tau=-1", "> 0"]),
    (["model.tau=abc"], ["model.tau=abc", "Float"]),  # types: Hydra refuses them (misseg.runs.config schemas)
    (["model.encoder.width=wide"], ["model.encoder.width=wide", "Integer"]),
    (["model.encoder.depth=1", "model.d=8"], ["model.encoder.depth=1", "log2(model.d)=3"]),
    (["model.objective.views=3"], ["model.objective.views=3", "1, 2"]),
    (
        ["model.objective.views=1", "model.objective.view_shift=2"],
        ["model.objective.view_shift=2 moves the second view", "views=2"],
    ),
    (["model.objective.views=2", "model.objective.view_shift=-1"], ["model.objective.view_shift=-1", ">= 0"]),
    (["model.heads.bottleneck=0"], ["model.heads.bottleneck=0", ">= 1"]),
    (["model.objective.correspondence_weight=-1"], ["model.objective.correspondence_weight=-1.0", ">= 0"]),
    (["model.objective.correspondence_partner=far"], ["model.objective.correspondence_partner='far'", "nearest"]),
    (
        ["model/reference=effnet_lite0"],
        ["model/reference is set (timm tf_efficientnet_lite0)", "correspondence_weight > 0"],
    ),
    (
        ["model.objective.correspondence_weight=1", "model/reference=encoder_body"],
        ["model/reference=encoder_body", "model.encoder.freeze=true"],
    ),
    (["model/reference=encoder_body"], ["model/reference is set (the encoder's body)", "correspondence_weight > 0"]),
    (["model/encoder=effnet_lite0", "model.encoder.upsample=0"], ["model.encoder.upsample=0", ">= 1"]),
    (["model.encoder_width=32"], ["model.encoder_width was renamed", "model.encoder.width"]),
    (["model.backbone=timm:resnet18"], ["model.backbone was renamed", "model/encoder=timm"]),
    (["model=iic", "model.heads.width=2"], ["model.heads.width"]),  # IIC has no heads F_k: refused, not ignored
    (["model.P=0"], ["model.P=0", ">= 1"]),
    (["data.image_size=100"], ["data.image_size=100", "larger than", "native_size=64"]),
    (
        ["experiment=folder", "data.root=.", "data.resize_shorter=64", "data.image_size=128"],
        ["data.image_size=128", "pre-scaled", "resize_shorter=64"],
    ),
    (["experiment=nope"], ["experiment=nope", "coco_persons", "demo", "folder"]),
    (["data=nope"], ["data=nope", "folder", "synthetic"]),
    (["model.lr=-0.001"], ["model.lr=-0.001", "> 0"]),
    (["data.batch_size=1"], ["data.batch_size=1", ">= 2", "negatives"]),
    (["model.lrr=1"], ["model.lrr"]),
    # OmegaConf reads any integer as a bool: a number in a switch is refused, not taken as true
    (["model.objective.view_vflip=3"], ["model.objective.view_vflip=3", "model.objective.view_vflip=true"]),
    (["model=iic", "model.objective.vflip=0"], ["model.objective.vflip=0", "true/false"]),
    (["data.on_bad_file=maybe", "experiment=folder", "data.root=."], ["data.on_bad_file='maybe'", "skip"]),
]


@pytest.mark.parametrize("argv,expected", BAD_CONFIGS, ids=[" ".join(a) for a, _ in BAD_CONFIGS])
def test_bad_config_is_one_line_exit_2_and_creates_nothing(argv, expected, tmp_path, capsys):
    code, err = run_main(train_cli, [*argv, f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2
    for text in expected:
        assert text in line, line
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run directory


def test_a_sweep_refuses_a_number_in_a_switch_before_any_job(tmp_path, capsys):
    argv = ["-m", "model.objective.view_vflip=true,3", f"hydra.sweep.dir={tmp_path}/sweep"]
    code, err = run_main(train_cli, argv, capsys)
    assert code == 2 and "model.objective.view_vflip=3: a true/false key" in error_line(err)
    assert not (tmp_path / "sweep").exists()


def test_bad_config_from_the_shell_exits_fast_without_traceback(tmp_path):
    r = run_cli("-m", "misseg.train", "model.tau=-1", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: model.tau=-1.0: must be a number > 0 or null (= 1/sqrt(P))"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "module, arg",
    [("misseg.train", "model.heads.merge=ward"), ("misseg.evaluate", "ckpt_path=missing.ckpt")],
)
def test_a_bad_command_line_is_refused_before_torch_is_imported(tmp_path, module, arg):
    # the README's promise (refused in under a second): a fresh interpreter, since the test process has torch already;
    # model.heads.merge's choices come from misseg.models, whose centroids.py once pulled torch into the check
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{module!r}, {arg!r}, 'hydra.run.dir={tmp_path}/run']\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'torch' in sys.modules)\n"
    )
    r = run_cli("-c", probe, cwd=tmp_path, timeout=120)  # not `-m`: a fresh interpreter, not a fork of the server
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_evaluate_validates_too(tmp_path, capsys):
    code, err = run_main(evaluate_cli, [f"ckpt_path={tmp_path}/missing.ckpt"], capsys)
    assert code == 2 and f"ckpt_path={tmp_path}/missing.ckpt: no such checkpoint file" in error_line(err)


# ------------------------------------------------------------------ 2. data errors: one scan, stop or skip


def break_dataset(root: Path) -> dict[str, str]:
    """Six pairs from make_folder_dataset, broken in every way the scan checks -> {file name: reason text}."""
    (root / "masks" / "000.png").unlink()  # image without a mask
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "zzz.png")  # mask without an image
    Image.fromarray(np.zeros((30, 52), np.uint8)).save(root / "masks" / "002.png")  # wrong size
    bad = np.zeros((40, 52), np.uint8)
    bad[0, 0] = 7
    Image.fromarray(bad).save(root / "masks" / "004.png")  # value 7 with 3 classes
    jpg = (root / "images" / "001.jpg").read_bytes()
    (root / "images" / "001.jpg").write_bytes(jpg[: len(jpg) // 2])  # truncated JPEG
    (root / "images" / "003.jpg").write_bytes(b"\xff\xd8 not a jpeg at all")  # corrupt
    return {
        "000.png": "no mask",
        "zzz.png": "without an image",
        "002.png": "(30, 52)",
        "004.png": "[7]",
        "001.jpg": "truncated",
        "003.jpg": "unreadable",
    }


def test_scan_reports_every_bad_file_in_one_pass(folder_dataset):
    expected = break_dataset(folder_dataset)
    report = scan_folder(folder_dataset, num_classes=3)
    found = {b.path.name: b.reason for b in report.bad}
    assert set(found) == set(expected)
    for name, text in expected.items():
        assert text in found[name], (name, found[name])
    assert [p[0].name for p in report.pairs] == ["005.jpg"]  # the one good pair


def test_data_errors_stop_with_one_line_and_write_the_list(folder_dataset, tmp_path, capsys):
    break_dataset(folder_dataset)
    code, err = run_main(
        train_cli, ["experiment=folder", f"data.root={folder_dataset}", *TINY, f"hydra.run.dir={tmp_path}/run"], capsys
    )
    line = error_line(err)
    assert code == 2 and "6 bad file(s)" in line and "001.jpg" in line and "data.on_bad_file=skip" in line
    listed = (tmp_path / "run" / "bad_files.txt").read_text()
    assert all(name in listed for name in ("000.png", "001.jpg", "002.png", "003.jpg", "004.png", "zzz.png"))


def test_on_bad_file_skip_trains_on_the_rest(tmp_path, capsys):
    root = make_folder_dataset(tmp_path / "ds", n=8)
    Image.fromarray(np.full((40, 52), 9, np.uint8)).save(root / "masks" / "003.png")
    (root / "images" / "005.jpg").write_bytes(b"garbage")
    code, err = run_main(
        train_cli,
        [
            "experiment=folder",
            f"data.root={root}",
            "data.on_bad_file=skip",
            *TINY,
            "data.image_size=16",
            "data.batch_size=2",
            "data.num_workers=0",
            "trainer.max_steps=1",
            f"hydra.run.dir={tmp_path}/run",
        ],
        capsys,
    )
    assert code == 0, err[-3000:]
    assert "skipped 2 bad file(s)" in err
    assert sorted(
        line.split("\t")[0].rsplit("/", 1)[1] for line in (tmp_path / "run" / "bad_files.txt").read_text().splitlines()
    ) == ["003.png", "005.jpg"]
    import json

    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["num_images"] == 6


@pytest.mark.parametrize(
    "layout,expected",
    [
        ("no_root", "no such directory"),
        ("no_images", "images: not found"),
        ("empty_images", "holds no"),
    ],
)
def test_missing_data_names_the_path_and_the_prepare_command(tmp_path, layout, expected, capsys):
    root = tmp_path / "ds"
    if layout != "no_root":
        root.mkdir()
        (root / "classes.txt").write_text("a\nb\n")
        (root / "masks").mkdir()
    if layout == "empty_images":
        (root / "images").mkdir()
    code, err = run_main(
        train_cli, ["experiment=folder", f"data.root={root}", *TINY, f"hydra.run.dir={tmp_path}/run"], capsys
    )
    line = error_line(err)
    assert code == 2 and expected in line and "python -m misseg.data.prepare" in line and str(root) in line


def test_crop_larger_than_the_smallest_unresized_image(folder_dataset):
    with pytest.raises(Exception, match=r"data.image_size=48: larger than the shorter side of .*\(40 px"):
        FolderDataModule(root=str(folder_dataset), image_size=48, resize_shorter=None, batch_size=2)


def test_scan_stop_lists_all_bad_files_on_the_error(folder_dataset):
    break_dataset(folder_dataset)
    with pytest.raises(BadFilesError) as e:
        FolderDataModule(root=str(folder_dataset), image_size=16, batch_size=2)
    assert len(e.value.bad) == 6


# ------------------------------------------------------------------ 3. numerics


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_extreme_scores_give_finite_loss_and_gradients(scale):
    torch.manual_seed(0)
    L = (torch.randn(3, 4, 2, 2).sign() * (abs(scale) ** 0.5)).requires_grad_()
    H = (torch.randn(3, 5, 4).sign() * (scale / abs(scale)) * (abs(scale) ** 0.5)).requires_grad_()
    out = mi_objective(L, H, tau=1.0)
    assert torch.einsum("bpuv,bkp->bkuv", L, H).abs().max() >= abs(scale)  # scores really are ~1e4 or more
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(L.grad).all() and torch.isfinite(H.grad).all()


class Diverges(pl.LightningModule):
    """A linear model whose loss turns NaN at batch `bad_batch` (as after an exploding step)."""

    def __init__(self, bad_batch: int) -> None:
        super().__init__()
        self.layer, self.bad_batch = torch.nn.Linear(4, 1), bad_batch

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        if batch_idx == self.bad_batch:
            loss = loss * float("nan")
        return {"loss": loss, "joint": torch.tensor(1.0)}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=2)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_last=True, save_top_k=-1)
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[NonFiniteGuard(), ckpt],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        accelerator="cpu",
        enable_model_summary=False,
    )
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 4 \(epoch 0, batch 3\): loss=nan, joint=1"):
        trainer.fit(Diverges(bad_batch=3))
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3  # the step before the NaN, not overwritten
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert not list(tmp_path.glob("*step=4*"))


def test_nan_weights_are_never_written(tmp_path):
    guard = NonFiniteGuard()

    class T:
        global_step = 7

    with pytest.raises(NonFiniteLossError, match="non-finite weights at step 7 .*layer.weight"):
        guard.on_save_checkpoint(T(), None, {"state_dict": {"layer.weight": torch.tensor([1.0, float("inf")])}})


def test_diverging_run_exits_3_with_the_step_and_terms(tmp_path, capsys):
    code, err = run_main(
        train_cli,
        [
            *TINY,
            "model.lr=1e30",
            "data.num_images=8",
            "data.batch_size=4",
            "trainer.max_epochs=3",
            f"hydra.run.dir={tmp_path}/run",
        ],
        capsys,
    )
    line = error_line(err)
    assert code == 3 and "non-finite" in line and "step" in line and "joint=" in line and "model.lr" in line


# ------------------------------------------------------------------ 4. crashes: atomic checkpoints


def test_kill_during_checkpoint_write_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    atomic_torch_save({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    class KilledMidWrite:
        def __reduce__(self):
            os._exit(9)  # like kill -9 while torch.save is writing: no cleanup, no exception handlers

    new = {"step": 2, "w": torch.zeros(1_000_000), "z": KilledMidWrite()}  # tensors made before fork (no
    pid = os.fork()  # intra-op thread pool in the child)
    if pid == 0:  # child: start writing a big new checkpoint and die half-way
        try:
            atomic_torch_save(new, path)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("forked writer hung")
        time.sleep(0.05)
    assert os.WEXITSTATUS(status[1]) == 9
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True)["step"] == 1
    assert find_last_checkpoint(tmp_path) == path  # what ckpt_path=last resumes from
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "last.ckpt"]
    assert all(name.startswith(".last.ckpt.tmp-") for name in leftovers)  # never named *.ckpt


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    cb = RNGStateCheckpoint()
    torch.manual_seed(3)
    np.random.seed(3)
    atomic_torch_save(cb.state_dict(), tmp_path / "rng.ckpt")
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    cb.load_state_dict(torch.load(tmp_path / "rng.ckpt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


# ------------------------------------------------------------------ 5. outputs never silently overwritten


def test_existing_run_dir_is_refused_unless_resuming(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    code, err = run_main(train_cli, [*TINY, f"hydra.run.dir={run}"], capsys)
    line = error_line(err)
    assert code == 2 and f"hydra.run.dir={run}: holds a previous run" in line and "ckpt_path=last" in line
    code, err = run_main(train_cli, [*TINY, f"hydra.run.dir={run}", "ckpt_path=last"], capsys)
    assert code == 2 and f"no checkpoint in {run}/checkpoints" in error_line(err)
    check_run_dir(run, "last")  # resuming is allowed
    (tmp_path / "fresh" / ".hydra").mkdir(parents=True)
    check_run_dir(tmp_path / "fresh", None)  # only Hydra's own files: a new run


def test_evaluate_refuses_an_existing_output_dir(tmp_path, capsys):
    (tmp_path / "model.ckpt").write_bytes(b"x")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text("{}")
    code, err = run_main(evaluate_cli, [f"ckpt_path={tmp_path}/model.ckpt", f"hydra.run.dir={tmp_path}/eval"], capsys)
    assert code == 2 and "holds a previous run (metrics.json)" in error_line(err)


def test_outputs_go_to_new_files(tmp_path):
    first = write_metrics(tmp_path, {"miou": 0.1})
    second = write_metrics(tmp_path, {"miou": 0.2})
    assert (first.name, second.name) == ("metrics.json", "metrics-1.json")
    assert '"miou": 0.1' in first.read_text() and new_file(first).name == "metrics-2.json"


# ------------------------------------------------------------------ 6. untrusted inputs


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoints_load_weights_only_and_refuse_pickled_code(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Payload()}, f)
    code, err = run_main(
        evaluate_cli, [f"ckpt_path={evil}", "data.num_images=4", f"hydra.run.dir={tmp_path}/e"], capsys
    )
    assert code == 2 and f"ckpt_path={evil}: not a loadable misseg checkpoint" in error_line(err)
    assert not (tmp_path / "PWNED").exists()


def test_no_shell_commands_in_misseg():
    """Config values (paths) must never reach a shell: no os.system/os.popen, no subprocess shell=True."""
    offenders = []
    for path in (REPO / "misseg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen") or any(
                    k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert offenders == []


def test_sigterm_after_training_raises_interrupted_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="final evaluation"):
        with sigterm_raises("SIGTERM during the final evaluation"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes; never reached
            pytest.fail("SIGTERM did not interrupt the block")
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "module,argv,names",
    [
        ("misseg.data.prepare", [], "required: set"),
        ("misseg.data.prepare", ["coco-stuff15", "--out", "x"], "--coco-root"),
        ("misseg.bench", ["--device", "tpu"], "--device: invalid choice: 'tpu'"),
        ("misseg.bench", ["--threads", "two"], "--threads: invalid int value: 'two'"),
    ],
)
def test_argparse_clis_answer_a_bad_argument_in_one_line(module, argv, names, capsys):
    """The non-Hydra CLIs (and the experiment scripts) use runs.errors.OneLineArgumentParser: one line naming
    the argument and where the help is, exit 2, not argparse's multi-line usage block."""
    import importlib

    main = importlib.import_module(module if module != "misseg.bench" else "misseg.bench.__main__").main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert names in err and f"(see python -m {module}" in err and "--help)" in err


def test_existing_path_types_name_the_argument_the_value_and_the_hint(tmp_path, capsys):
    """runs.errors.existing_dir / existing_file: argparse `type=`s that pass the value through unchanged and
    refuse a missing path (or a path of the other kind) in the parser's one line."""
    from misseg.runs.errors import OneLineArgumentParser, existing_dir, existing_file

    (tmp_path / "a.ckpt").write_bytes(b"")
    ap = OneLineArgumentParser(prog="p")
    ap.add_argument("data", metavar="DATA_DIR", type=existing_dir("pass a folder set"))
    ap.add_argument("ckpt", metavar="CKPT", type=existing_file("pass a checkpoint"))
    args = ap.parse_args([str(tmp_path), str(tmp_path / "a.ckpt")])
    assert (args.data, args.ckpt) == (str(tmp_path), str(tmp_path / "a.ckpt"))
    for argv, line in [
        ([str(tmp_path / "no"), str(tmp_path / "a.ckpt")], f"argument DATA_DIR: {tmp_path / 'no'}: no such directory"),
        ([str(tmp_path / "a.ckpt"), str(tmp_path / "a.ckpt")], "no such directory; pass a folder set"),
        ([str(tmp_path), str(tmp_path)], f"argument CKPT: {tmp_path}: no such file; pass a checkpoint"),
    ]:
        with pytest.raises(SystemExit) as e:
            ap.parse_args(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.splitlines()) == 1 and line in err, err
