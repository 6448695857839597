import pytest
import torch
from conftest import tiny_module

from misseg.bench.__main__ import compare
from misseg.bench.__main__ import main as bench_main
from misseg.bench.metric import iic_votes
from misseg.bench.naive import NaiveConfusion, NaiveHeads, einsum_mi_loss, naive_mi_loss
from misseg.bench.train_step import Setting, bench_step, check_same_math, fit_exponent, separated
from misseg.data.batch_augment import UInt8CropDataset, augment_batch
from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.metrics.matching import confusion_matrix
from misseg.models.heads import HighLevelHeads
from misseg.objectives.mi import mi_objective


def test_naive_reference_computes_misseg_math_with_gradients():
    torch.manual_seed(0)
    heads = HighLevelHeads(K=4, P=6, width=3).eval()
    naive = NaiveHeads(4, 6, width=3).load_from(heads).eval()
    L = torch.randn(3, 6, 8, 8, requires_grad=True)
    H_fast, H_naive = heads(L), naive(L)
    assert torch.allclose(H_fast, H_naive, atol=1e-5)
    fast, ref = mi_objective(L, H_fast, 0.3)["loss"], naive_mi_loss(L, H_naive, 0.3)
    assert torch.allclose(fast, ref, atol=1e-5)
    (g_fast,) = torch.autograd.grad(fast, L, retain_graph=True)
    (g_ref,) = torch.autograd.grad(ref, L)
    assert torch.allclose(g_fast, g_ref, atol=1e-5)
    einsum = einsum_mi_loss(L, H_fast, 0.3)  # the one-einsum reference: same loss, same gradient
    assert torch.allclose(fast, einsum, atol=1e-5)
    (g_einsum,) = torch.autograd.grad(einsum, L)
    assert torch.allclose(g_fast, g_einsum, atol=1e-5)
    assert check_same_math(torch.device("cpu")) < 1e-4


def test_bench_step_reports_positive_rate_and_the_fast_paths_run():
    s = Setting(2, 16, 8, 3)
    for fast in ({}, {"channels_last": True}):
        row = bench_step(s, "misseg", torch.device("cpu"), warmup=1, steps=1, **fast)
        assert row["images_per_s"] > 0 and row["step_s"] > 0


def test_overlapping_timings_are_flagged_not_reported():
    assert separated([1.0, 1.1, 1.2], [2.0, 2.2, 2.1])
    assert not separated([1.0, 1.5, 2.1], [2.0, 2.2, 2.1])  # the spread exceeds the difference
    assert compare({"a": [1.0, 1.1], "b": [2.0, 2.2]}, "a", "b") == "2.00x"  # median ratio
    assert "noise" in compare({"a": [1.0, 2.5], "b": [2.0, 2.2]}, "a", "b")


def test_bench_writes_a_new_directory_and_refuses_an_existing_one(tmp_path, capsys):
    out = tmp_path / "bench"
    result = bench_main(["--quick", "--sections", "objective,scaling", "--out-dir", str(out), "--threads", "1"])
    assert {p.name for p in out.iterdir()} == {"bench_cpu.md", "bench_cpu.json", "scaling_cpu.png"}
    axes = result["sections"]["scaling"]["axes"]
    for d in axes.values():  # every figure carries its spread and a verdict on it
        assert d["exponent_min"] <= d["exponent_max"] and isinstance(d["trusted"], bool)
        assert all(r["min"] <= r["median"] <= r["max"] and len(r["times"]) == 3 for r in d["rows"])
    before = (out / "bench_cpu.md").read_text()
    with pytest.raises(SystemExit) as e:
        bench_main(["--quick", "--sections", "objective", "--out-dir", str(out)])
    assert e.value.code == 2 and "exists" in capsys.readouterr().err
    assert (out / "bench_cpu.md").read_text() == before
    with pytest.raises(SystemExit) as e:
        bench_main(
            ["--quick", "--sections", "data", "--data-root", str(tmp_path / "nope"), "--out-dir", str(out) + "2"]
        )
    assert e.value.code == 2 and not (tmp_path / "bench2").exists()


def test_bench_crf_section_times_both_paths_and_checks_they_agree(tmp_path):
    pytest.importorskip("pydensecrf", reason="the crf section needs pydensecrf2 (pip install 'misseg[crf]')")
    result = bench_main(["--quick", "--sections", "crf", "--out-dir", str(tmp_path / "b"), "--threads", "1"])
    crf = result["sections"]["crf"]
    assert crf["workers"][0] == 0 and crf["workers"][1] >= 2
    (row,) = crf["rows"]
    assert row["same_output"] is True and row["speedup"] > 0
    assert all(len(t) == 2 and min(t) > 0 for t in row["times"].values())
    assert "| B=4 16x16 K=2 |" in (tmp_path / "b" / "bench_cpu.md").read_text()


def test_fit_exponent_recovers_power_law():
    xs = [2, 8, 15, 27]
    assert fit_exponent(xs, [3.0 * x**1.5 for x in xs]) == pytest.approx(1.5)


def test_confusion_matrix_matches_numpy_references_with_ignore():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (3, 17, 11), generator=g)
    target = torch.randint(0, 4, (3, 17, 11), generator=g)
    target[torch.rand(3, 17, 11, generator=g) < 0.2] = 255
    got = confusion_matrix(pred, target, 5, 4).numpy()
    ref = NaiveConfusion(5, 4)
    ref.update(pred, target)
    assert (got == ref.compute()["confusion"]).all()
    keep = (target != 255).numpy().reshape(-1)
    assert (got == iic_votes(pred.numpy().reshape(-1)[keep], target.numpy().reshape(-1)[keep], 5, 4)).all()
    assert (confusion_matrix(pred, target.to(torch.uint8), 5, 4).numpy() == got).all()  # uint8 masks too


@pytest.mark.parametrize("bad", [4, 254, 300, -1])
def test_confusion_matrix_rejects_labels_outside_classes_and_ignore(bad):
    pred = torch.zeros(1, 2, 2, dtype=torch.long)
    target = torch.tensor([[[0, 1], [255, bad]]])
    with pytest.raises(ValueError, match=f"target holds class {bad} but num_classes=4"):
        confusion_matrix(pred, target, 2, 4)


def test_confusion_matrix_rejects_cluster_ids_beyond_num_pred():
    with pytest.raises(ValueError, match="num_pred=2"):
        confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), 2, 2)


def test_augment_batch_identity_without_jitter_and_bounded_with_jitter():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 9, 7), dtype=torch.uint8, generator=g)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    plain = augment_batch(x, jitter=0, hue=0)
    assert torch.allclose(plain, (x.float() / 255 - mean) / std, atol=1e-6)
    out = augment_batch(x, jitter=0.4, hue=0.1, generator=g)
    rgb = out * std + mean
    assert out.shape == x.shape and rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5
    assert not torch.allclose(out, plain)  # the jitter does change the colours
    grey = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)  # hue rotation keeps a grey pixel grey
    assert torch.allclose(augment_batch(grey, jitter=0, hue=0.5, generator=g), augment_batch(grey, 0, 0), atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        augment_batch(x.float())


def test_uint8_crop_dataset_crops_image_and_mask_together():
    images = torch.arange(2 * 3 * 10 * 12, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 3, 10, 12)
    masks = images[:, 0].clone()
    item = UInt8CropDataset(images, masks, 8)[1]
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.uint8
    assert torch.equal(item["image"][0].long(), item["mask"])  # the mask followed the crop and the flip
    with pytest.raises(ValueError, match="at least 16 px"):
        UInt8CropDataset(images, masks, 16)


def test_module_channels_last_option_trains_one_step_with_same_state_keys():
    plain = tiny_module("mi", "K=3", "d=4")
    fast = tiny_module("mi", "K=3", "d=4", "channels_last=true")
    assert plain.state_dict().keys() == fast.state_dict().keys()
    fast.on_fit_start()
    L, H = fast.features(torch.randn(2, 3, 16, 16))
    assert L.shape == (2, 8, 4, 4) and H.shape == (2, 3, 8)
    assert fast.model.encoder.project.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(fast.objective(L, H)["loss"])
