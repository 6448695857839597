"""Issue 13, first contact: error hints, the end-of-run summary, one error contract for every CLI, image
formats, nothing lost on resume, and the small things (metrics.json notes, ONNX metadata, legend, sweep table).

Entry points run in-process (as in tests/test_robustness.py) except where an exit status or the files a
process leaves behind are the point."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import TINY, run_cli, tiny_module
from hydra import compose, initialize_config_dir
from PIL import Image
from test_predict_export import save_checkpoint
from test_robustness import error_line, run_main

from misseg import export as export_cli
from misseg import predict as predict_cli
from misseg import train as train_cli
from misseg.data.images import IMAGE_SUFFIXES
from misseg.lit.callbacks import EpochTQDMProgressBar, bar_metrics, planned_epochs
from misseg.runs.config import config_dir
from misseg.runs.errors import ConfigError
from misseg.runs.provenance import available_cores
from misseg.runs.results import format_summary, metrics_record
from misseg.runs.validation import check_clusters_match_classes, closest_key, unexpected_key_error

# ------------------------------------------------------------------ 1. error hints


def test_k_error_advice_for_k_above_and_below_the_classes():
    with pytest.raises(ConfigError) as above:
        check_clusters_match_classes(7, 4, "hungarian")
    assert "7 is more" in str(above.value) and "model.matching=majority" in str(above.value)
    with pytest.raises(ConfigError) as below:
        check_clusters_match_classes(2, 4, "hungarian")
    text = str(below.value)
    assert "2 is fewer" in text and "model.K=4" in text and "at least 2 of the 4 classes" in text
    assert "K > classes" not in text  # the old advice only fit K above the classes
    with pytest.raises(ConfigError, match="checkpoint trained with model.K=4.*matching=majority"):
        check_clusters_match_classes(2, 4, "hungarian", key="K (checkpoint)", matching_key="matching")
    check_clusters_match_classes(2, 4, "majority")  # majority accepts any K


def test_closest_key():
    valid = ["model", "model.tau", "model.K", "model.P", "data.num_images", "trainer.max_steps"]
    assert closest_key("model.tua", valid) == "model.tau"
    assert closest_key("model.k", valid) == "model.K"
    assert closest_key("modle.tau", valid) == "model.tau"
    assert closest_key("trainer.max_step", valid) == "trainer.max_steps"
    assert closest_key("model.zzzzzz", valid) is None


@pytest.mark.parametrize(
    "override,suggestion",
    [
        ("model.tua=1", "model.tau"),
        ("data.num_imags=8", "data.num_images"),
        ("trainr.max_steps=1", "trainer.max_steps"),
    ],
)
def test_wrong_key_suggests_the_closest_and_never_plus(override, suggestion, tmp_path, capsys):
    code, err = run_main(train_cli, [override, f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2 and f"did you mean {suggestion}?" in line and "+" not in line
    assert not (tmp_path / "run").exists()  # refused before Hydra made anything


def test_plus_key_is_refused_in_one_line_not_a_type_error(tmp_path, capsys):
    code, err = run_main(train_cli, ["+model.tua=1", *TINY, f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2 and line.startswith("error: model.tua:") and "did you mean model.tau?" in line


def test_a_group_choice_the_demo_sizes_cannot_fit_says_what_to_do(tmp_path, capsys):
    """The demo's conf/data_model file sets model.objective.views; the IIC objective has no views."""
    code, err = run_main(train_cli, ["model/objective=iic", f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2 and "model.objective.views" in line and "conf/data_model/synthetic_mi_thesis.yaml" in line
    assert "data=folder data.root=DIR" in line and not (tmp_path / "run").exists()


@pytest.mark.parametrize("heads", sorted(p.stem for p in (Path(config_dir()) / "model/heads").glob("*.yaml")))
def test_the_demo_composes_with_every_heads_choice(heads):
    """README: `model/heads=...` on the bare demo. The demo's heads width is keyed on the heads choice
    (conf/data_model/heads/), so a choice without a width keeps the demo's other sizes instead of being refused."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"model/heads={heads}"])
    assert cfg.model.P == 64 and cfg.tags == ["demo"]  # the demo's sizes apply
    assert cfg.model.heads.get("width") == (16 if heads == "thesis" else None)


def test_unexpected_key_error_follows_kwargs_to_the_base_class():
    class Base:
        def __init__(self, batch_size: int = 2, image_size: int = 8) -> None: ...

    class Child(Base):
        def __init__(self, root: str = "", **kwargs) -> None: ...

    err = unexpected_key_error("data", Child, TypeError("__init__() got an unexpected keyword argument 'batch_sise'"))
    assert "data.batch_sise" in str(err) and "did you mean data.batch_size?" in str(err)
    assert unexpected_key_error("data", Child, TypeError("something else")) is None


# ------------------------------------------------------------------ 3. one error contract: predict and export


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tiny_module("mi", "K=3"), tmp_path / "tiny.ckpt")


def write_images(folder: Path, suffixes=(".jpg", ".png", ".webp", ".bmp", ".tif")) -> list[str]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i, suffix in enumerate(suffixes):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"im{i}{suffix}")
    return [f"im{i}" for i in range(len(suffixes))]


def test_predict_reads_every_format_and_reports_other_files(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    stems = write_images(tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0")
    monkeypatch.chdir(tmp_path)
    args = [f"ckpt_path={tiny_checkpoint}", "input=in", "output=out", "size=8", "num_workers=0", "progress=false"]
    code, err = run_main(predict_cli, args, capsys)
    assert code == 0, err[-2000:]
    assert sorted(p.stem for p in (tmp_path / "out" / "masks").iterdir()) == stems
    assert "skipped 2 file(s) that are not images (.DS_Store, notes.txt)" in err
    # output= given: no logs/predict/runs/<time>, no .hydra/, no predict.log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "tiny.ckpt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["confidence", "masks", "overlays", "predict.json"]

    # the same output again: one line, exit 2, nothing touched
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    code, err = run_main(predict_cli, args, capsys)
    assert code == 2 and "exist already" in error_line(err)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == before


@pytest.mark.parametrize(
    "override,expected",
    [
        ("input=missing", "input='missing': no such file or folder"),
        ("ckpt_path=missing.ckpt", "ckpt_path=missing.ckpt: no such checkpoint file"),
        ("policy=zoom", "policy='zoom'"),
        ("mapping=missing.json", "mapping=missing.json: no such file"),
    ],
)
def test_predict_errors_are_one_line_and_create_nothing(
    override, expected, tmp_path, tiny_checkpoint, monkeypatch, capsys
):
    write_images(tmp_path / "in", (".png",))
    monkeypatch.chdir(tmp_path)
    code, err = run_main(predict_cli, [f"ckpt_path={tiny_checkpoint}", "input=in", "num_workers=0", override], capsys)
    assert code == 2 and expected in error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "tiny.ckpt"]  # no logs/ at all


def test_predict_unreadable_image_is_one_line(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    write_images(tmp_path / "in", (".png",))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.chdir(tmp_path)
    args = [f"ckpt_path={tiny_checkpoint}", "input=in", "output=out", "size=8", "num_workers=0", "progress=false"]
    code, err = run_main(predict_cli, args, capsys)
    assert code == 2 and "broken.jpg: cannot be read as an image" in error_line(err)


def test_export_errors_are_one_line_and_metadata_names_the_checkpoint_by_hash(
    tmp_path, tiny_checkpoint, monkeypatch, capsys
):
    import hashlib

    import onnx

    monkeypatch.chdir(tmp_path)
    args = [f"ckpt_path={tiny_checkpoint}", "out=m.onnx", "size=16", "check=false"]
    code, err = run_main(export_cli, args, capsys)
    assert code == 0, err[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "tiny.ckpt"]  # no logs/export/runs/<time>
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["misseg.ckpt_name"] == "tiny.ckpt"
    assert meta["misseg.ckpt_sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert not any(str(tmp_path) in v for v in meta.values())  # no absolute path of this machine

    before = (tmp_path / "m.onnx").read_bytes()
    for override, expected in (
        ("out=m.onnx", "out='m.onnx' exists already"),
        ("ckpt_path=missing.ckpt", "ckpt_path=missing.ckpt: no such checkpoint file"),
        ("format=tflite", "format='tflite'"),
    ):
        code, err = run_main(export_cli, [*args, override] if override != "out=m.onnx" else args, capsys)
        assert code == 2 and expected in error_line(err), (override, err[-2000:])
    assert (tmp_path / "m.onnx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "tiny.ckpt"]


# ------------------------------------------------------------------ 4. image formats


def make_mixed_dataset(root: Path) -> Path:
    """A folder dataset with one image per format, and files that are not images."""
    stems = write_images(root / "images")
    (root / "masks").mkdir()
    for stem in stems:
        mask = np.zeros((20, 24), np.uint8)
        mask[:, 12:] = 1
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    (root / "classes.txt").write_text("a\nb\n")
    (root / "images" / "notes.txt").write_text("not an image")
    (root / "images" / ".DS_Store").write_bytes(b"\0")
    (root / "masks" / "readme.md").write_text("not a mask")
    return root


def test_training_and_predict_share_one_list_of_formats():
    from misseg.data import scan
    from misseg.deploy import inference

    assert inference.IMAGE_SUFFIXES is scan.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".webp", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".png"} <= set(IMAGE_SUFFIXES)


def test_scan_pairs_every_format_and_lists_ignored_files(tmp_path):
    from misseg.data.scan import scan_folder

    root = make_mixed_dataset(tmp_path / "ds")
    report = scan_folder(root, num_classes=2)
    assert not report.bad
    assert sorted(image.suffix for image, _ in report.pairs) == [".bmp", ".jpg", ".png", ".tif", ".webp"]
    assert sorted(b.path.name for b in report.ignored) == [".DS_Store", "notes.txt", "readme.md"]


def test_training_data_reports_ignored_files_in_the_run_dir(tmp_path, capsys):
    root = make_mixed_dataset(tmp_path / "ds")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=folder", f"data.root={root}", "data.image_size=16"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    datamodule = train_cli.make_datamodule(cfg.data, run_dir)
    assert len(datamodule.pairs) == 5
    assert "ignored 3 file(s) that are not images/masks" in capsys.readouterr().err
    listed = (run_dir / "ignored_files.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == [".DS_Store", "notes.txt", "readme.md"]
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape[1:] == (3, 16, 16)  # .webp/.bmp/.tif decode in training


# ------------------------------------------------------------------ 2. progress bar, quiet output, summary


def test_planned_epochs_counts_the_epochs_max_steps_allows():
    assert planned_epochs(20, 20, 2) == 10  # the demo with max_steps: not 20
    assert planned_epochs(20, -1, 2) == 20
    assert planned_epochs(-1, 25, 4) == 7  # max_epochs unbounded: max_steps alone
    assert planned_epochs(None, -1, 4) is None
    assert planned_epochs(10, 7, 5, accumulate=2) == 3  # 3 optimizer steps an epoch (the last one partial)
    assert planned_epochs(10, 5, float("inf")) == 10  # an iterable dataset of unknown length


def test_progress_bar_shows_the_real_epoch_count_loss_and_mi():
    trainer = SimpleNamespace(max_epochs=20, max_steps=20, num_training_batches=2, accumulate_grad_batches=1)
    bar = EpochTQDMProgressBar()
    assert bar.epoch_description(trainer, 9) == "Epoch 10/10"
    assert bar.epoch_description(trainer, 0) == "Epoch 1/10"
    metrics = {"train/loss_step": torch.tensor(1.234567), "train/mi_step": torch.tensor(-0.5), "train/loss": 9.0}
    assert bar_metrics(metrics) == {"loss": "1.235", "mi": "-0.5"}
    assert bar_metrics({"train/loss": torch.tensor(2.0)}) == {"loss": "2"}  # epoch value when no step value


def test_format_summary_names_weights_classes_and_files(tmp_path):
    result = {"pa": 0.81234, "miou": 0.5, "per_class_iou": [0.9, float("nan"), 0.1], "mapping": [2, 0, 1]}
    result.update(matching="hungarian", num_images=12, confusion=[[1, 0, 0]] * 3)
    metrics = metrics_record(result, ["sky", "person", "grass"], weights="last")
    figures = {"iou": tmp_path / "figures" / "iou.png", "confusion": tmp_path / "figures" / "confusion.png"}
    text = format_summary(metrics, tmp_path, tmp_path / "metrics.json", figures)
    lines = text.splitlines()
    assert lines[0] == "evaluation (weights: last, clusters matched by Hungarian (one-to-one), 12 images):"
    assert "  PA   0.812" in lines and "  mIoU 0.500" in lines
    assert "    sky     0.900" in lines and "    grass   0.100" in lines
    assert any(line.startswith("    person  n/a") for line in lines)
    assert f"run directory: {tmp_path}" in lines
    assert f"  metrics:  {tmp_path / 'metrics.json'}" in lines
    assert f"  figures:  {tmp_path / 'figures'}/ (iou.png, confusion.png)" in lines
    # evaluation off: only where the run is
    assert format_summary({}, tmp_path) == f"run directory: {tmp_path}"


def test_metrics_record_says_what_was_scored_and_what_the_arrays_mean():
    m = metrics_record({"pa": 1.0, "mapping": [1, 0], "confusion": [[0, 5], [3, 0]]}, ["a", "b"], weights="last")
    assert m["weights"] == "last" and m["class_names"] == ["a", "b"]
    assert m["mapping_direction"].startswith("cluster -> class")
    assert m["confusion_orientation"].startswith("rows = predicted clusters (K), columns = true classes")


def test_confusion_orientation_note_is_true():
    """The note in metrics.json against the code: rows are clusters, columns are true classes."""
    from misseg.metrics.matching import confusion_matrix

    pred = torch.tensor([0, 0, 0, 2])  # K = 3 clusters
    target = torch.tensor([1, 1, 0, 1])  # 2 classes
    conf = confusion_matrix(pred, target, num_pred=3, num_classes=2)
    assert conf.shape == (3, 2) and conf[0, 1] == 2 and conf[0, 0] == 1 and conf[2, 1] == 1


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo training through the CLI, progress bar on: 8 images / batch 4 = 2 steps an epoch, and
    max_steps=3 ends it in epoch 2 of the demo's max_epochs=20."""
    tmp = tmp_path_factory.mktemp("demo")
    bar_on = [a for a in TINY if not a.startswith("trainer.enable_progress_bar")]
    args = ["-m", "misseg.train", *bar_on, "trainer.max_steps=3", "data.num_images=8", "data.batch_size=4"]
    r = run_cli(*args, f"hydra.run.dir={tmp}/run")
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "run", r


def test_demo_output_has_the_real_epoch_count_loss_mi_and_a_summary(demo_run):
    run, r = demo_run
    out = r.stdout
    assert "Epoch 2/2" in out and "/19" not in out and "/20" not in out
    assert "loss:" in out and "mi:" in out
    assert "evaluation (weights: last, clusters matched by Hungarian (one-to-one), 8 images):" in out
    for name in ("flat", "horizontal", "vertical", "checker"):  # the synthetic classes, by name
        assert f"    {name}" in out
    assert f"run directory: {run}" in out and f"figures:  {run / 'figures'}/" in out


def test_demo_output_has_no_chatter_a_user_cannot_act_on(demo_run):
    _, r = demo_run
    both = r.stdout + r.stderr
    for noise in ("Tip", "litlogger", "log_every_n_steps", "LeafSpec", "Seed set to", "TPU available"):
        assert noise not in both, noise


def test_final_evaluation_is_not_an_extra_epoch(demo_run):
    run, _ = demo_run
    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert max(int(row["epoch"]) for row in rows if row["epoch"]) == 1  # epochs 0 and 1 only
    final = [row for row in rows if row.get("final/miou")]
    assert len(final) == 1 and final[0]["epoch"] == "" and final[0]["step"] == "3"
    metrics = json.loads((run / "metrics.json").read_text())
    assert float(final[0]["final/miou"]) == pytest.approx(metrics["miou"])
    assert metrics["weights"] == "last"


def test_evaluate_prints_the_summary_and_names_the_checkpoint(demo_run, tmp_path):
    run, _ = demo_run
    ckpt = run / "checkpoints" / "last.ckpt"
    r = run_cli("-m", "misseg.evaluate", f"ckpt_path={ckpt}", "data.num_images=8", f"hydra.run.dir={tmp_path}/eval")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"evaluation (weights: ckpt_path={ckpt}, clusters matched by Hungarian (one-to-one), 8 images):" in r.stdout
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["weights"] == f"ckpt_path={ckpt}"


# ------------------------------------------------------------------ 5. nothing lost on resume


def test_resume_keeps_the_csv_history_and_every_start(tmp_path):
    common = [*TINY, "data.num_images=8", "data.batch_size=4", f"hydra.run.dir={tmp_path}/run"]
    r = run_cli("-m", "misseg.train", *common, "trainer.max_epochs=1")
    assert r.returncode == 0, r.stderr[-3000:]
    first_csv = (tmp_path / "run" / "csv" / "metrics.csv").read_text()
    r = run_cli("-m", "misseg.train", *common, "trainer.max_epochs=2", "ckpt_path=last")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "will be deleted" not in r.stdout + r.stderr

    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(row["start"], row["epoch"]) for row in rows if row["epoch"]} == {("0", "0"), ("1", "1")}
    first = [row for row in rows if row["start"] == "0"]
    assert len(first) == len(first_csv.splitlines()) - 1  # every row of the first start is still there
    assert (tmp_path / "run" / "csv" / "hparams.yaml").is_file() and (
        tmp_path / "run" / "csv" / "hparams-1.yaml"
    ).is_file()

    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    starts = info["starts"]
    assert len(starts) == 2 and all(s["status"] == "done" for s in starts)
    assert all(s["cores"] == available_cores() for s in starts)  # the wall times' context, per start
    assert "trainer.max_epochs=1" in starts[0]["overrides"] and "ckpt_path=last" in starts[1]["overrides"]
    assert starts[0]["start_time"] < starts[1]["start_time"] and starts[0]["config"] == "config_resolved.yaml"
    assert starts[1]["config"] == "config_resolved-1.yaml"
    assert info["duration_s"] == pytest.approx(starts[0]["duration_s"] + starts[1]["duration_s"], abs=0.01)
    assert "max_epochs: 1" in (tmp_path / "run" / "config_resolved.yaml").read_text()  # not overwritten


# ------------------------------------------------------------------ 6. legend, sweep table


def test_predict_legend_scales_with_the_image():
    from misseg.deploy.inference import draw_legend, palette

    def legend_height(side: int) -> int:
        picture = np.full((side, side, 3), 128, np.uint8)
        changed = (draw_legend(picture, ["sky", "person", "grass"], palette(3)) != picture).any(-1)
        return int(np.nonzero(changed)[0].max())

    small, large = legend_height(120), legend_height(3000)
    assert small < 80 and large > 300  # ~1/30 of the side per line: readable on a 4000 px photo


def test_sweep_markdown_rounds_sampled_floats(tmp_path):
    from misseg.runs.sweep import write_summary

    for job, lr in enumerate(("0.00012345678901234567", "0.0031622776601683794")):
        run = tmp_path / str(job)
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(f"- model.lr={lr}\n- model.P=64\n")
        (run / "metrics.json").write_text(json.dumps({"pa": 0.912345678, "miou": 0.512345678 + job}))
    csv_path, md_path = write_summary(tmp_path)
    md = md_path.read_text()
    assert "0.0001235" in md and "0.003162" in md and "0.00012345678901234567" not in md
    assert "0.00012345678901234567" in csv_path.read_text()  # the CSV keeps full precision


def test_multirun_wrong_key_or_group_option_is_refused_before_any_job(tmp_path, capsys):
    code, err = run_main(train_cli, ["-m", "model.tua=1,2", f"hydra.sweep.dir={tmp_path}/sweep"], capsys)
    assert code == 2 and "did you mean model.tau?" in error_line(err)
    code, err = run_main(train_cli, ["-m", "experiment=demo,nope", f"hydra.sweep.dir={tmp_path}/sweep"], capsys)
    assert code == 2 and "experiment=nope: unknown experiment" in error_line(err)
    assert not (tmp_path / "sweep").exists()


def test_sweep_overrides_lists_the_first_job_and_every_value():
    from misseg.runs.validation import sweep_overrides

    assert sweep_overrides(["-m", "model.K=2,4", "seed=1"]) == (
        ["model.K=2", "seed=1"],
        ["model.K=2", "model.K=4", "seed=1"],
    )
    assert sweep_overrides(["model.K=2"]) is None and sweep_overrides(["-m", "--cfg", "job"]) is None
