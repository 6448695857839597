import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import run_cli, tiny_module
from hydra import compose, initialize_config_dir
from PIL import Image

from misseg.export import MatrixAdaptiveAvgPool2d, export, export_onnx, onnx_parity
from misseg.predict import predict
from misseg.runs.config import config_dir


def save_checkpoint(module: pl.LightningModule, path: Path) -> Path:
    """The parts of a Lightning checkpoint that load_from_checkpoint reads: fast, no Trainer."""
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "misseg_class": "misseg.lit.mi.MISegModule",
            "misseg_model": module.model_config,
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return path


@pytest.fixture
def tiny_ckpt(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tiny_module("mi", "K=3"), tmp_path / "tiny.ckpt")


def config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(name, overrides=overrides)


def make_images(folder: Path) -> dict[str, tuple[int, int]]:
    """Images of several sizes and modes -> {stem: upright (H, W)}."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(folder / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 20), dtype=np.uint8)).save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 255, (15, 15, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    im = Image.fromarray(rng.integers(0, 255, (30, 70, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 8  # displayed rotated by 90 degrees: the mask must have the upright size
    im.save(folder / "exif.jpg", exif=exif)
    (folder / "notes.txt").write_text("not an image, not listed")
    return {"rgb": (37, 53), "grey": (64, 20), "rgba": (15, 15), "exif": (70, 30)}


def test_predict_cli_writes_masks_at_original_size_and_never_overwrites(tmp_path, tiny_ckpt):
    sizes = make_images(tmp_path / "in")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"mapping": [1, -1, 0], "class_names": ["sky", "person"]}))
    out = tmp_path / "out"
    args = [
        "-m",
        "misseg.predict",
        f"ckpt_path={tiny_ckpt}",
        f"input={tmp_path / 'in'}",
        f"output={out}",
        f"mapping={metrics}",
        "size=16",
        "batch_size=2",
        "num_workers=0",
        "device=cpu",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    r = run_cli(*args, "policy=sliding")
    assert r.returncode == 0, r.stderr[-3000:]
    for stem, (h, w) in sizes.items():
        mask = np.array(Image.open(out / "masks" / f"{stem}.png"))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 1, 255}
        assert np.array(Image.open(out / "overlays" / f"{stem}.png")).shape == (h, w, 3)
        assert np.array(Image.open(out / "confidence" / f"{stem}.png")).shape == (h, w)
        assert np.array(Image.open(out / "confidence" / f"{stem}.png")).min() >= 255 // 3  # max of 3 probs
    summary = json.loads((out / "predict.json").read_text())
    assert summary["num_images"] == 4 and [label["name"] for label in summary["labels"]] == ["sky", "person"]
    before = (out / "masks" / "rgb.png").read_bytes()

    overrides = [a for a in args[2:] if not a.startswith("hydra.")]
    with pytest.raises(FileExistsError, match="exist already"):  # same output: refused before writing anything
        predict(config("predict", [*overrides, "policy=resize"]))
    assert (out / "masks" / "rgb.png").read_bytes() == before

    predict(
        config(
            "predict",
            [
                *overrides,
                f"output={tmp_path / 'single'}",
                "confidence=npy",
                "mapping=null",
                f"input={tmp_path / 'in' / 'exif.jpg'}",
                "policy=none",
            ],
        )
    )
    conf = np.load(tmp_path / "single" / "confidence" / "exif.npy")
    assert conf.shape == (70, 30) and conf.dtype == np.float16
    assert np.array(Image.open(tmp_path / "single" / "masks" / "exif.png")).max() <= 2  # cluster ids 0..K-1


def test_matrix_pool_equals_adaptive_avg_pool():
    z = torch.randn(2, 3, 7, 13)
    assert torch.allclose(MatrixAdaptiveAvgPool2d(4)(z), torch.nn.functional.adaptive_avg_pool2d(z, 4), atol=1e-6)


def test_onnx_parity_with_dynamic_batch_and_size(tmp_path):
    torch.manual_seed(0)
    model = tiny_module("mi", "K=3").model.eval()
    path = export_onnx(model, tmp_path / "m.onnx", example_size=(32, 32), metadata={"misseg.K": "3"})
    # shapes other than the traced one, odd sizes included
    assert onnx_parity(model, path, sizes=((2, 32, 32), (1, 40, 58), (3, 21, 17))) < 1e-4
    import onnx
    import onnxruntime as ort

    assert {p.key: p.value for p in onnx.load(str(path)).metadata_props}["misseg.K"] == "3"
    x = torch.rand(1, 3, 24, 36)
    classes = ort.InferenceSession(str(path)).run(["classes"], {"image": x.numpy()})[0]
    ref = model.predict(
        (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    )[0]
    assert (classes == ref.numpy()).mean() > 0.999
    with pytest.raises(FileExistsError, match="exists already"):
        export_onnx(model, path)


def test_export_cli(tmp_path, tiny_ckpt):
    r = run_cli(
        "-m",
        "misseg.export",
        f"ckpt_path={tiny_ckpt}",
        "format=onnx",
        f"out={tmp_path}/m.onnx",
        "size=16",
        f"hydra.run.dir={tmp_path}/hydra",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "m.onnx").is_file() and "max |probs difference|" in r.stdout
    with pytest.raises(ValueError, match="format='tflite'"):
        export(config("export", [f"ckpt_path={tiny_ckpt}", "format=tflite", f"out={tmp_path}/x"]))


def test_onnx_export_of_over_clustered_centroid_heads_merges_the_centres(tmp_path):
    """model.heads.overcluster = 3: the exported graph reads p over the K classes (the centres merged), as predict
    does, not one channel per centre."""
    from misseg.lit.build import build_module, compose_model

    torch.manual_seed(0)
    overrides = ["P=8", "d=2", "encoder.depth=2", "encoder.width=4", "model/heads=centroids", "K=3"]
    module = build_module(compose_model("mi", [*overrides, "heads.overcluster=3"]), None)
    module.model.heads.kmeans_step(torch.randn(2, 8, 8, 8))  # seeded centres, merged into K groups
    module.model.heads.kmeans_step(torch.randn(2, 8, 8, 8))
    model = module.model.eval()
    path = export_onnx(model, tmp_path / "m.onnx", example_size=(32, 32))
    assert onnx_parity(model, path, sizes=((2, 32, 32), (1, 40, 24))) < 1e-4
    import onnxruntime as ort

    probs = ort.InferenceSession(str(path)).run(["probs"], {"image": torch.rand(1, 3, 32, 32).numpy()})[0]
    assert probs.shape == (1, 3, 32, 32) and np.allclose(probs.sum(1), 1, atol=1e-4)
