import json

import numpy as np
import pytest
import torch
from conftest import assert_consistent_metrics, run_cli
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from misseg.data.datamodule import SyntheticDataModule
from misseg.metrics.segmentation import HungarianSegmentationMetric
from misseg.viz.figures import (
    UNMATCHED_COLOR,
    class_colors,
    colorize,
    matched_confusion,
    relabel,
    save_class_histogram,
    save_confusion_matrix,
    save_iou_bars,
    save_qualitative_grid,
)
from misseg.viz.report import mask_class_counts, write_report

TINY = [
    "model.P=8",
    "model.encoder.depth=2",
    "model.encoder.width=4",
    "model.d=2",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_side=150, max_side=4000):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
    assert min_side <= w <= max_side and min_side <= h <= max_side, (path.name, w, h)


def test_colours_are_fixed_per_class_and_ignore_is_black_unmatched_grey():
    colors = class_colors(4)
    assert len({tuple(c) for c in colors}) == 4 and (class_colors(4) == colors).all()
    assert len({tuple(c) for c in class_colors(27)}) == 27
    labels = np.array([[0, 3, 255, -1]])
    rgb = colorize(labels, colors)
    assert (rgb[0, 0] == colors[0]).all() and (rgb[0, 1] == colors[3]).all()
    assert (rgb[0, 2] == 0).all() and (rgb[0, 3] == UNMATCHED_COLOR).all()
    assert (colorize(labels, colors, ignore=np.array([[True, False, False, False]]))[0, 0] == 0).all()


def test_matched_confusion_sums_clusters_onto_their_classes():
    confusion = np.array([[5, 1], [2, 7], [0, 3]])  # 3 clusters, 2 classes
    assert relabel(np.array([0, 1, 2]), [1, 0, -1]).tolist() == [1, 0, -1]
    m = matched_confusion(confusion, [1, 0, -1])  # (true, predicted + unmatched)
    assert m.tolist() == [[2, 5, 0], [7, 1, 3]] and m.sum() == confusion.sum()
    assert matched_confusion(confusion, [0, 1, 1]).tolist() == [[5, 2, 0], [1, 10, 0]]  # majority-style


def test_every_figure_is_a_png_of_sensible_size(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(5)]
    masks = rng.integers(0, 5, (3, 40, 60))
    masks[:, :4] = 255
    paths = [
        save_qualitative_grid(
            tmp_path / "grid.png",
            rng.random((3, 40, 60, 3)),
            masks,
            rng.integers(-1, 5, (3, 40, 60)),
            rng.random((3, 40, 60)),
            names,
            "title",
        ),
        save_confusion_matrix(
            tmp_path / "sub" / "conf.png", rng.integers(0, 100, (7, 5)), [0, 1, 2, 3, 4, -1, -1], names
        ),
        save_iou_bars(tmp_path / "iou.png", [0.5, float("nan"), 0.1, 0.9, 0.0], names),
        save_class_histogram(tmp_path / "hist.png", [100, 0, 5, 30, 1], names),
    ]
    for p in paths:
        assert_png(p)
    with Image.open(paths[0]) as im:  # 4 panels of 2.4 in at 100 dpi per row, 3 rows of 3:2 images
        assert im.size[0] > 800 and im.size[1] > 450
    with pytest.raises(ValueError, match="need equal"):
        save_qualitative_grid(tmp_path / "x.png", rng.random((2, 4, 4, 3)), masks[:1], masks[:1], masks[:1], names)


class RecordingWandb(WandbLogger):
    def __init__(self):
        super().__init__(offline=True)
        self.logged = []

    def log_image(self, key, images, **kwargs):
        self.logged.append((key, images))


def test_report_writes_figures_logs_them_and_counts_classes(tmp_path):
    dm = SyntheticDataModule(num_images=6, native_size=32, image_size=32, batch_size=4, eval_batch_size=4)
    dm.setup("validate")
    metric = HungarianSegmentationMetric(6, 4, matching="majority")  # over-clustering: 6 clusters, 4 classes

    def predict(x):  # a fixed "segmenter": cluster = quantised brightness
        clusters = (x.mean(1) * 2 + 3).clamp(0, 5).long()
        return clusters, torch.full(clusters.shape, 0.5)

    for batch in dm.val_dataloader():
        metric.update(predict(batch["image"])[0], batch["mask"])
    result = metric.compute()
    logger = RecordingWandb()
    paths = write_report(tmp_path, predict, dm, result, [logger], num_examples=3, title="test")
    assert set(paths) == {"qualitative", "confusion", "iou", "class_histogram"}
    for p in paths.values():
        assert p.parent == tmp_path / "figures"
        assert_png(p)
    assert sorted(k for k, _ in logger.logged) == sorted(f"figures/{k}" for k in paths)
    # the histogram drawn from the confusion matrix is the masks' class count
    assert (np.asarray(result["confusion"]).sum(0) == mask_class_counts(dm.val_dataloader(), 4)).all()


def test_iic_trains_via_the_cli_and_evaluate_reloads_it_with_majority_matching(tmp_path):
    r = run_cli(
        "-m",
        "misseg.train",
        "model=iic",
        *TINY,
        "model.K=6",
        "model.K_over=8",
        "model.objective.T=2",
        "model.matching=majority",
        "trainer.max_steps=2",
        "data.num_images=8",
        "data.batch_size=4",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(m["mapping"]) == 6 and m["num_images"] == 8
    assert_consistent_metrics(m)
    assert len(list((tmp_path / "run" / "figures").glob("*.png"))) == 4
    r = run_cli(
        "-m",
        "misseg.evaluate",
        f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt",
        "data.num_images=8",
        "matching=majority",
        "report=false",
        f"hydra.run.dir={tmp_path}/eval",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    e = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert e["matching"] == "majority" and e["confusion"] == m["confusion"]  # same IIC model, other matching
    assert e["pa"] >= m["pa"] and not (tmp_path / "eval" / "figures").exists()
