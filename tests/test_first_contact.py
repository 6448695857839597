"""Issue 13, first contact: error hints, the end-of-run summary, one error contract for every CLI, image
formats, nothing lost on resume, and the small things (metrics.json notes, ONNX metadata, legend, sweep table).

Entry points run in-process (as in tests/test_robustness.py) except where an exit status or the files a
process leaves behind are the point."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from hydra import compose, initialize_config_dir
from PIL import Image
from test_predict_export import TINY_MODEL, save_checkpoint
from test_robustness import error_line, run_main

from misseg import export as export_cli
from misseg import predict as predict_cli
from misseg import train as train_cli
from misseg.config import config_dir
from misseg.data.images import IMAGE_SUFFIXES
from misseg.errors import ConfigError
from misseg.module import MISegModule
from misseg.validation import check_clusters_match_classes, closest_key, unexpected_key_error

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
    return save_checkpoint(MISegModule(**TINY_MODEL), tmp_path / "tiny.ckpt")


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
    from misseg import inference
    from misseg.data import scan

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
