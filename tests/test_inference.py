import json

import numpy as np
import pytest
import torch
from conftest import tiny_module
from PIL import Image
from torch.nn import functional as F

from misseg.deploy import inference as inf
from misseg.models.segmenter import MISegmenter


def tiny_model(*overrides: str) -> MISegmenter:
    torch.manual_seed(0)
    return tiny_module("mi", "K=3", *overrides).model.eval()


@pytest.mark.parametrize("shape,size", [((3, 5, 7), (23, 41)), ((4, 9, 6), (9, 6)), ((2, 3, 3), (100, 17))])
def test_upsample_argmax_equals_interpolate_in_row_chunks(shape, size):
    p = torch.softmax(torch.randn(*shape), 0)
    ref = F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0]
    classes, conf = inf.upsample_argmax(p, size, max_elements=shape[0] * size[1] * 3)  # 3 rows per chunk
    assert torch.allclose(conf, ref.max(0).values, atol=1e-6)
    assert torch.equal(classes, ref.argmax(0))


def test_resized_shape_keeps_aspect_and_stride():
    assert inf.resized_shape(480, 640, 64, 4) == (64, 84)
    assert inf.resized_shape(640, 480, 64, 8) == (88, 64)  # 85.3 -> nearest multiple of 8
    assert inf.resized_shape(10, 1000, 2, 4) == (4, 200)  # never below one stride
    assert inf.window_starts(100, 40, 20) == [0, 20, 40, 60] and inf.window_starts(30, 40, 20) == [0]
    assert inf.window_starts(70, 40, 20) == [0, 20, 30]


def test_sliding_windows_average_onto_the_feature_grid():
    model = tiny_model()
    image = torch.randint(0, 255, (3, 40, 100), dtype=torch.uint8)
    # a window as large as the resized image = the resize policy exactly
    (whole,) = inf.predict_probs(model, [image], "resize", 40)
    crops, offsets, canvas = inf.make_views(image, "sliding", 40, 2, overlap=0.5)
    assert canvas == (40, 100) and crops.shape == (4, 3, 40, 40) and offsets == [(0, 0), (0, 20), (0, 40), (0, 60)]
    (slid,) = inf.predict_probs(model, [image], "sliding", 40, overlap=0.5, batch_size=3)
    assert slid.shape == whole.shape == (3, 20, 50)
    # left columns only in window 0; columns 10..20 averaged over windows 0 and 1
    p = inf.feature_probs(model, crops)
    assert torch.allclose(slid[:, :, :10], p[0, :, :, :10], atol=1e-6)
    assert torch.allclose(slid[:, :, 10:20], (p[0, :, :, 10:] + p[1, :, :, :10]) / 2, atol=1e-6)
    assert torch.allclose(slid.sum(0), torch.ones(20, 50), atol=1e-5)


def test_batching_and_grouping_do_not_change_results():
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 255, s, dtype=torch.uint8, generator=g) for s in [(3, 30, 40), (3, 50, 20), (3, 30, 40)]]
    together = inf.predict_probs(model, images, "resize", 16, batch_size=8)
    alone = [inf.predict_probs(model, [im], "resize", 16, batch_size=1)[0] for im in images]
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert together[0].shape == (3, 8, 11) and together[1].shape == (3, 20, 8)


def test_load_image_modes_and_exif(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (10, 20), dtype=np.uint8)).save(tmp_path / "grey.png")
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 255  # left opaque red, right fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    im = Image.fromarray(rng.integers(0, 255, (10, 30, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif)

    grey = inf.load_image(tmp_path / "grey.png")
    assert grey.shape == (3, 10, 20) and torch.equal(grey[0], grey[1])
    rgb = inf.load_image(tmp_path / "rgba.png")
    assert rgb[:, 0, 0].tolist() == [200, 0, 0] and rgb[:, 0, 7].tolist() == [255, 255, 255]
    assert inf.load_image(tmp_path / "rotated.jpg").shape == (3, 30, 10)  # upright size
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(inf.InputError, match="bad.jpg"):
        inf.load_image(tmp_path / "bad.jpg")
    assert [p.name for p in inf.list_images(tmp_path)] == ["bad.jpg", "grey.png", "rgba.png", "rotated.jpg"]
    with pytest.raises(inf.InputError, match="no such"):
        inf.list_images(tmp_path / "missing")


def test_mapping_names_unmatched_and_errors(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"mapping": [1, -1, 0], "class_names": ["sky", "road"]}))
    mapping, names = inf.load_mapping(path, K=3)
    assert names == ["sky", "road"]
    mapped = inf.apply_mapping(torch.tensor([[0, 1, 2]]), mapping)
    assert mapped.tolist() == [[1, inf.UNMATCHED, 0]]
    with pytest.raises(inf.InputError, match="K=4"):
        inf.load_mapping(path, K=4)
    with pytest.raises(inf.InputError, match="not found"):
        inf.load_mapping(tmp_path / "nope.json", K=3)


def test_overlay_palette_and_output_names(tmp_path):
    colours = inf.palette(14)
    assert colours.shape == (14, 3) and len({tuple(c) for c in colours}) == 14
    image = torch.zeros(3, 2, 2, dtype=torch.uint8)
    out = inf.overlay(image, torch.tensor([[0, 1], [inf.UNMATCHED, 0]]), colours, alpha=1.0)
    assert out[0, 0].tolist() == colours[0].tolist() and out[1, 0].tolist() == [0, 0, 0]
    names = inf.output_stems([tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "b.jpg"])
    assert names == ["a.jpg", "a.png", "b"]
    assert inf.class_map_array(torch.tensor([[3, 300]])).dtype == np.uint16
    inf.save_png_new(np.zeros((2, 2), np.uint8), tmp_path / "x.png")
    with pytest.raises(FileExistsError):
        inf.save_png_new(np.ones((2, 2), np.uint8), tmp_path / "x.png")
