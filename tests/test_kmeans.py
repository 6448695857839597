import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image
from torch.nn import functional as F

from misseg.baselines.kmeans import (
    kmeans_baseline,
    kmeans_fit,
    kmeans_inertia,
    kmeans_plusplus,
    kmeans_predict,
    kmeans_predict_maps,
    restart_seed,
    rgb_features,
)
from misseg.data.datamodule import FolderDataModule
from misseg.metrics.segmentation import HungarianSegmentationMetric

COLOURS = np.array([[230, 30, 30], [30, 200, 40], [40, 40, 220]], np.uint8)


def colour_dataset(root, n=6, size=24):
    """Class c is painted colour c (+ small noise): K-means on RGB must find the classes exactly."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[:, size // 3 :] = 1
        mask[size // 2 :, 2 * size // 3 :] = 2 if i % 3 else 1  # class 2 is rare -> unequal shares
        mask[:2] = 255
        img = COLOURS[np.minimum(mask, 2)].astype(np.int16) + rng.integers(-8, 9, (size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


@pytest.fixture
def colour_dm(tmp_path):
    dm = FolderDataModule(str(colour_dataset(tmp_path / "colours")), image_size=24, batch_size=4, eval_batch_size=4)
    dm.setup("validate")
    return dm


def blobs(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 5.0], [0.0, 12.0, -6.0]])
    labels = torch.arange(3).repeat_interleave(n // 3)
    return means[labels] + 0.3 * torch.randn(n, 3, generator=g), labels, means


def test_kmeans_recovers_well_separated_clusters_across_batches():
    x, labels, means = blobs()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    batches = [x[perm][i : i + 100] for i in range(0, len(x), 100)]  # every batch mixes the blobs
    # k-means++ for every seed (random seeding can put two centres in one blob: a Lloyd local optimum)
    for seed in range(5):
        centres = kmeans_fit(batches, 3, iters=10, seed=seed)
        dist = torch.cdist(means, centres)  # each true mean has exactly one centre next to it
        assert dist.min(1).values.max() < 0.2, seed
        assert sorted(dist.argmin(1).tolist()) == [0, 1, 2]
        assign = torch.cdist(x, centres).argmin(1)
        assert all(len(set(assign[labels == k].tolist())) == 1 for k in range(3))


def test_restarts_keep_the_lowest_inertia_fit():
    x, labels, means = blobs()
    batches = [x[i : i + 100] for i in range(0, len(x), 100)]
    # random seeding lands in a local optimum (two centres in one blob) for some of the restarts' seeds
    single = [kmeans_fit(batches, 3, iters=10, seed=restart_seed(0, r), init="random") for r in range(10)]
    inertias = [kmeans_inertia(batches, c) for c in single]
    assert max(inertias) > 10 * min(inertias)
    best = kmeans_fit(batches, 3, iters=10, seed=0, init="random", restarts=10)
    assert kmeans_inertia(batches, best) == pytest.approx(min(inertias))
    assert torch.cdist(means, best).min(1).values.max() < 0.2  # the good optimum: one centre per blob
    # restarts=1 is the single seeded fit; the restarts of different seeds draw different seedings
    assert torch.equal(
        kmeans_fit(batches, 3, seed=4, init="random"), kmeans_fit(batches, 3, seed=4, init="random", restarts=1)
    )
    assert len({restart_seed(s, r) for s in range(3) for r in range(10)}) == 30
    with pytest.raises(ValueError, match="restarts=0"):
        kmeans_fit(batches, 3, restarts=0)


def test_kmeans_plusplus_spreads_the_seeds():
    x, labels, _ = blobs()
    seeds = kmeans_plusplus(x, 3, torch.Generator().manual_seed(0))
    nearest_blob = torch.cdist(seeds, blobs()[2]).argmin(1)
    assert sorted(nearest_blob.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="at least K pixels"):
        kmeans_plusplus(x[:2], 3)


def test_rgb_baseline_solves_colour_classes_and_matches_the_metric_path(colour_dm):
    loader = colour_dm.val_dataloader()
    result, segmenter = kmeans_baseline(loader, loader, 3, 3, rgb_features, iters=5)
    assert result["miou"] == pytest.approx(1.0) and result["pa"] == pytest.approx(1.0)
    # the same predictions fed to the metric by hand give the identical confusion matrix
    metric = HungarianSegmentationMetric(3, 3)
    for batch in loader:
        metric.update(kmeans_predict(batch["image"], segmenter.centres), batch["mask"])
    assert metric.compute()["confusion"] == result["confusion"]
    assert result["num_pixels"] == 6 * 22 * 24


def test_one_cluster_is_the_trivial_baseline(colour_dm):
    loader = colour_dm.val_dataloader()
    result, _ = kmeans_baseline(loader, loader, 1, 3, iters=2)
    counts = np.asarray(result["confusion"]).sum(0)
    share = counts.max() / counts.sum()
    assert result["pa"] == pytest.approx(share) and result["miou"] == pytest.approx(share / 3)


def test_feature_maps_at_lower_resolution_are_upsampled_to_the_masks(colour_dm):
    loader = colour_dm.val_dataloader()

    def pooled(x):  # any feature map: here colours averaged over 2x2 cells (half resolution)
        return F.avg_pool2d(x, 2)

    result, segmenter = kmeans_baseline(loader, loader, 3, 3, pooled, iters=5)
    classes, confidence = segmenter.predict_maps(next(iter(loader))["image"])
    assert classes.shape == confidence.shape == (4, 24, 24)
    assert 0 <= float(confidence.min()) and float(confidence.max()) <= 1
    assert result["miou"] > 0.9  # only pixels on region borders can change


def test_predict_maps_confidence_is_zero_on_the_border_and_one_on_a_centre():
    centres = torch.tensor([[0.0], [2.0]])
    feats = torch.tensor([[[[0.0, 1.0, 2.0]]]])  # (1, 1, 1, 3)
    classes, conf = kmeans_predict_maps(feats, centres)
    assert classes[0, 0].tolist()[::2] == [0, 1]
    assert conf[0, 0].tolist() == pytest.approx([1.0, 0.0, 1.0])


def test_kmeans_cli_writes_metrics_and_figures(tmp_path):
    root = colour_dataset(tmp_path / "colours")
    r = run_cli(
        "-m",
        "misseg.baselines.kmeans",
        "data=folder",
        f"data.root={root}",
        "data.image_size=24",
        "data.num_workers=0",
        "kmeans.iters=3",
        "kmeans.restarts=2",
        "kmeans.K=5",
        "matching=majority",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["method"] == "kmeans" and m["K"] == 5 and m["matching"] == "majority" and m["restarts"] == 2
    assert len(m["mapping"]) == 5 and m["miou"] == pytest.approx(1.0) and m["num_images"] == 6
    assert {p.name for p in (tmp_path / "run" / "figures").glob("*.png")} == {
        "qualitative.png",
        "confusion.png",
        "iou.png",
        "class_histogram.png",
    }
    r = run_cli(
        "-m",
        "misseg.baselines.kmeans",
        "data=folder",
        f"data.root={root}",
        "kmeans.features=pixels",
        f"hydra.run.dir={tmp_path}/bad",
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: kmeans.features='pixels': use one of rgb, ckpt, backbone"
    ]
    assert not (tmp_path / "bad").exists()
    # a multirun's values are checked by each job: the same one line, exit 2, no traceback
    r = run_cli("-m", "misseg.baselines.kmeans", "-m", "kmeans.features=pixels", f"hydra.sweep.dir={tmp_path}/sweep")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: kmeans.features='pixels': use one of rgb, ckpt, backbone"
    r = run_cli("-m", "misseg.baselines.kmeans", "kmeans.restarts=0", f"hydra.run.dir={tmp_path}/bad")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: kmeans.restarts=0: must be an integer >= 1 (seedings; the lowest inertia is kept)"
    ]


def test_kmeans_segmenter_with_the_crf_cleans_labels_that_its_features_got_wrong():
    """crf=True (kmeans.crf / `misseg.baselines.kmeans crf=true`): the label maps are refined by the dense CRF on the
    image, so pixels whose features fell on the wrong centre, in a region of one colour, take the region's label."""
    pytest.importorskip("pydensecrf", reason="crf=true needs pydensecrf2 (pip install 'misseg[crf]')")
    from misseg.baselines.kmeans import KMeansSegmenter
    from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    g = torch.Generator().manual_seed(0)
    truth = torch.zeros(1, 48, 48, dtype=torch.long)
    truth[:, :, 20:] = 1
    image = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9]])[truth].permute(0, 3, 1, 2)
    flipped = torch.rand(1, 48, 48, generator=g) < 0.15  # the features put 15% of the pixels on the other centre
    features = (truth ^ flipped.long()).float()[:, None]
    centres = torch.tensor([[0.0], [1.0]])
    plain = KMeansSegmenter(centres, lambda x: features)
    refined = KMeansSegmenter(centres, lambda x: features, crf=True)
    x = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    noisy_acc = (plain.predict_maps(x)[0] == truth).float().mean()
    classes, confidence = refined.predict_maps(x)
    acc = (classes == truth).float().mean()
    assert classes.shape == confidence.shape == (1, 48, 48) and 0 < confidence.min() and confidence.max() <= 1
    assert noisy_acc < 0.9 and acc > 0.99, (float(noisy_acc), float(acc))


def test_kmeans_cli_with_crf_records_it_and_refuses_a_value_that_is_not_a_switch(tmp_path):
    pytest.importorskip("pydensecrf", reason="crf=true needs pydensecrf2 (pip install 'misseg[crf]')")
    root = colour_dataset(tmp_path / "colours")
    common = ("-m", "misseg.baselines.kmeans", "data=folder", f"data.root={root}", "data.image_size=24")
    r = run_cli(*common, "data.num_workers=0", "report=false", "crf=true", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["crf"] is True and m["miou"] == pytest.approx(1.0)  # one colour per class: nothing for the CRF to mend
    assert "K-means (rgb, K=3) + CRF: PA 1.0000" in r.stdout
    r = run_cli(*common, "crf=maybe", f"hydra.run.dir={tmp_path}/bad")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: crf='maybe': use true or false"]
    assert not (tmp_path / "bad").exists()
