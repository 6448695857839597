"""Diagnostics of misseg.evaluate (issue 14): linear / K-means probes on L, init=random, dense CRF."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY, make_folder_dataset, run_cli, tiny_module
from omegaconf import OmegaConf

from misseg.diagnostics.crf import labels_to_probs
from misseg.diagnostics.evaluation import check_crf_workers, check_diagnostics, probe_kinds
from misseg.diagnostics.features import local_features
from misseg.diagnostics.probe import fit_linear_probe, identity_scores, probe_split
from misseg.metrics.matching import confusion_matrix
from misseg.runs.errors import ConfigError
from misseg.runs.provenance import available_cores


def probe_scores(features, masks, num_classes, seed=0, **kw):
    """Fit on a seeded half, score on the other half: the protocol of misseg.diagnostics.evaluation."""
    fit, test = probe_split(len(features), 0.5, seed)
    probe, info = fit_linear_probe(features[fit], masks[fit], num_classes, seed=seed, **kw)
    with torch.no_grad():
        pred = probe(features[test], masks.shape[-2:]).argmax(1)
    return identity_scores(confusion_matrix(pred, masks[test], num_classes, num_classes)), probe, info


def separable_data(n=24, P=6, C=3, size=8, seed=0):
    """Features (n, P, size, size) in blocks of 2x2 positions, each block one class: its class's mean in R^P
    plus noise (linearly separable with a margin); masks (n, 2 size, 2 size) = the block labels upsampled
    (nearest), with a band of 255 (ignored) rows."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n, size // 2, size // 2), generator=g)
    means = 3 * torch.randn(C, P, generator=g)
    coarse = means[labels].permute(0, 3, 1, 2) + 0.5 * torch.randn(n, P, size // 2, size // 2, generator=g)
    features = coarse.repeat_interleave(2, -1).repeat_interleave(2, -2)
    masks = labels.repeat_interleave(4, -1).repeat_interleave(4, -2).to(torch.uint8)
    masks[:, :2] = 255
    return 3.0 * features + 5.0, masks  # an offset and scale the probe's standardisation must absorb


def test_probe_split_is_disjoint_seeded_and_covers_every_image():
    for n in (2, 3, 10, 101):
        fit, test = probe_split(n, 0.5, seed=3)
        assert fit and test and not set(fit) & set(test) and sorted(fit + test) == list(range(n))
        assert (fit, test) == probe_split(n, 0.5, seed=3)  # seeded
    assert len(probe_split(10, 0.3, 0)[0]) == 3
    assert probe_split(101, 0.5, 0) != probe_split(101, 0.5, 1)
    with pytest.raises(ValueError, match="at least 2"):
        probe_split(1, 0.5, 0)


def test_linear_probe_recovers_a_linearly_separable_labelling():
    features, masks = separable_data()
    scores, _, info = probe_scores(features, masks, 3, epochs=40, lr=5e-2)
    # bilinear upsampling of the logits only blurs the block borders, so a few pixels there may flip
    assert scores["miou"] > 0.9 and scores["pa"] > 0.95, scores
    # 12 fit images = one batch of 16 a pass: 40 passes would be 40 steps, so min_steps (1,000) sets the passes
    assert info["steps"] == info["epochs"] == 1000 and np.isfinite(info["final_loss"])
    _, _, info = probe_scores(features, masks, 3, epochs=40, lr=5e-2, min_steps=0)
    assert info["steps"] == info["epochs"] == 40


def test_linear_probe_is_at_chance_on_random_labels():
    features, _ = separable_data(n=24)
    g = torch.Generator().manual_seed(1)
    masks = torch.randint(0, 2, (24, 16, 16), generator=g, dtype=torch.uint8)  # independent of the features
    scores, _, _ = probe_scores(features, masks, 2, epochs=40, lr=5e-2)
    assert 0.4 < scores["pa"] < 0.6 and scores["miou"] < 0.45, scores


def test_linear_probe_is_deterministic_ignores_255_and_checks_labels():
    features, masks = separable_data(n=8)
    a, _ = fit_linear_probe(features, masks, 3, epochs=3, seed=0)
    b, _ = fit_linear_probe(features, masks, 3, epochs=3, seed=0)
    assert torch.equal(a.conv.weight, b.conv.weight)
    all_ignored = torch.full_like(masks, 255)
    _, info = fit_linear_probe(features, all_ignored, 3, epochs=2)  # no labelled pixel: no step, no NaN
    assert info["steps"] == 0
    bad = masks.clone()
    bad[0, 5, 5] = 7
    with pytest.raises(ValueError, match="class 7"):
        fit_linear_probe(features, bad, 3)


def test_local_features_is_the_encoder_output_for_mi_and_iic():
    x = torch.randn(2, 3, 16, 16)
    mi = tiny_module("mi", "K=2").eval()
    iic = tiny_module("iic", "K=2").eval()
    with torch.no_grad():
        assert torch.equal(local_features(mi, x), mi.model(x)[0])
        L = local_features(iic, x)
        assert L.shape == (2, 8, 8, 8)
        assert torch.allclose(iic.model.head(L), iic.model(x)["logits"])


def test_random_init_module_rebuilds_the_architecture_without_its_weights(tmp_path):
    from misseg.evaluate import random_init_module
    from misseg.lit.iic import IICSegModule

    trained = tiny_module("iic", "K=2")
    with torch.no_grad():
        for p in trained.parameters():
            p.fill_(0.5)  # "trained" weights that no seeded init produces
    ckpt = {
        "state_dict": trained.state_dict(),
        "hyper_parameters": dict(trained.hparams),
        "misseg_class": "misseg.lit.iic.IICSegModule",
        "misseg_model": trained.model_config,
    }
    torch.save(ckpt, tmp_path / "iic.ckpt")
    a = random_init_module(tmp_path / "iic.ckpt", seed=0, num_classes=2)
    b = random_init_module(tmp_path / "iic.ckpt", seed=0, num_classes=2)
    c = random_init_module(tmp_path / "iic.ckpt", seed=1, num_classes=2)
    assert type(a) is IICSegModule and a.hparams.P == 8
    wa, wb, wc = (m.model.head.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc) and not torch.equal(wa, trained.model.head.weight)


def test_labels_to_probs():
    labels = torch.tensor([[[0, 2], [1, 1]]])
    p = labels_to_probs(labels, 3)
    assert p.shape == (1, 3, 2, 2) and torch.allclose(p.sum(1), torch.ones(1, 2, 2))
    assert torch.equal(p.argmax(1), labels) and p.max() == pytest.approx(0.7)


def test_dense_crf_cleans_a_noisy_prediction_of_a_piecewise_constant_image():
    pytest.importorskip("pydensecrf", reason="crf=true needs pydensecrf2 (pip install 'misseg[crf]')")
    from misseg.diagnostics.crf import dense_crf_batch

    g = torch.Generator().manual_seed(0)
    truth = torch.zeros(1, 48, 48, dtype=torch.long)
    truth[:, :, 20:] = 1
    truth[:, 30:, 5:15] = 2
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.2, 0.8, 0.2]])
    image = colours[truth].permute(0, 3, 1, 2)  # (1, 3, H, W) in [0, 1], one colour per class
    # a prediction right on average but wrong on about a third of the pixels
    logits = 2.0 * torch.nn.functional.one_hot(truth, 3).permute(0, 3, 1, 2) + 1.6 * torch.randn(
        1, 3, 48, 48, generator=g
    )
    probs = logits.softmax(1)
    noisy_acc = (probs.argmax(1) == truth).float().mean()
    refined = dense_crf_batch(image, probs)
    assert refined.shape == probs.shape and torch.allclose(refined.sum(1), torch.ones(1, 48, 48), atol=1e-4)
    acc = (refined.argmax(1) == truth).float().mean()
    assert noisy_acc < 0.8 and acc > 0.97, (float(noisy_acc), float(acc))


def test_dense_crf_in_worker_processes_equals_in_process():
    """crf_workers spreads a batch over processes (pydensecrf2 holds the GIL): the same refinement, image for image."""
    pytest.importorskip("pydensecrf", reason="crf=true needs pydensecrf2 (pip install 'misseg[crf]')")
    from misseg.diagnostics import crf

    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 24, 24, generator=g)
    probs = (3 * torch.randn(5, 3, 24, 24, generator=g)).softmax(1)
    serial = crf.dense_crf_batch(images, probs)
    try:
        crf.set_workers(2)
        assert crf.get_workers() == 2
        pooled = crf.dense_crf_batch(images, probs)
    finally:
        crf.set_workers(0)
    assert crf._pool is None  # back to 0: the pool's processes are gone, not left idle
    assert torch.equal(pooled, serial) and not torch.equal(serial, probs)
    with pytest.raises(ValueError, match="CRF workers"):
        crf.set_workers(-1)


@pytest.mark.parametrize("module", ["misseg.train", "misseg.baselines.kmeans"])
def test_a_bad_crf_workers_is_one_line_and_exit_2_before_any_run(tmp_path, module):
    r = run_cli("-m", module, "crf_workers=-1", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: crf_workers=-1: must be an integer >= 0 (processes for the dense CRF; 0 = this process)"
    ]
    assert not (tmp_path / "run").exists()


def test_crf_workers_up_to_the_available_cores_and_no_more():
    n = available_cores()
    check_crf_workers(OmegaConf.create({"crf_workers": n}))
    with pytest.raises(ConfigError) as e:
        check_crf_workers(OmegaConf.create({"crf_workers": n + 1}))
    assert str(e.value) == f"crf_workers={n + 1}: {n} cores are available here; use at most {n} (0 = this process)"


def cfg(**kw):
    base = dict(probe=None, init="trained", probe_fit_fraction=0.5, probe_epochs=20, probe_lr=0.01, crf=False)
    return OmegaConf.create({**base, **kw})


def test_probe_spellings_and_bad_values_are_config_errors():
    assert probe_kinds(None) == [] and probe_kinds("all") == ["linear", "kmeans"]
    assert probe_kinds("kmeans") == ["kmeans"] and probe_kinds(OmegaConf.create(["kmeans", "linear"])) == [
        "linear",
        "kmeans",
    ]
    check_diagnostics(cfg(probe="all", init="random"))
    for bad, key in (
        (dict(probe="linaer"), "probe="),
        (dict(probe=[]), "probe="),
        (dict(init="scratch"), "init="),
        (dict(probe_fit_fraction=1.0), "probe_fit_fraction="),
        (dict(probe_epochs=0), "probe_epochs="),
        (dict(probe_lr=-1), "probe_lr="),
        (dict(probe_schedule="step"), "probe_schedule="),
        (dict(probe_min_steps=-1), "probe_min_steps="),
        (dict(crf="yes"), "crf="),
        (dict(crf_workers=-1), "crf_workers="),
        (dict(crf_workers="all"), "crf_workers="),
        (dict(crf_workers=available_cores() + 1), "crf_workers="),  # more processes than cores: a copied config
    ):
        with pytest.raises(ConfigError, match=key):
            check_diagnostics(cfg(**bad))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A 2-step MI checkpoint on a tiny folder dataset (the CLI, as a user makes one)."""
    tmp = tmp_path_factory.mktemp("diag")
    data = make_folder_dataset(tmp / "ds", n=6)
    r = run_cli(
        "-m",
        "misseg.train",
        "experiment=folder",
        f"data.root={data}",
        *TINY,
        "data.image_size=16",
        "data.batch_size=2",
        "data.num_workers=0",
        "trainer.max_steps=2",
        "evaluate=false",
        f"hydra.run.dir={tmp}/run",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "run" / "checkpoints" / "last.ckpt", data


def evaluate(ckpt, data, *args):
    common = [
        "data.image_size=16",
        "data.num_workers=0",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
    ]
    r = run_cli("-m", "misseg.evaluate", f"ckpt_path={ckpt}", "data=folder", f"data.root={data}", *common, *args)
    return r


def evaluated(ckpt, data, out, *args) -> dict:
    """metrics.json of an evaluation into `out` that must succeed."""
    r = evaluate(ckpt, data, *args, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def test_evaluate_probe_all_with_crf_writes_the_contract_keys(tmp_path, tiny_ckpt):
    pytest.importorskip("pydensecrf", reason="crf=true needs pydensecrf2 (pip install 'misseg[crf]')")
    ckpt, data = tiny_ckpt
    # crf_workers=2: the CRF in two worker processes, started from the entry point
    m = evaluated(ckpt, data, tmp_path / "eval", "probe=all", "crf=true", "probe_kmeans_restarts=3", "crf_workers=2")
    assert m["crf"] is True and "init" not in m and 0 <= m["miou"] <= m["pa"] <= 1
    probe = m["probe"]
    assert probe["split"] == {"seed": 0, "fit_fraction": 0.5, "fit_images": 3, "test_images": 3}
    for name in ("linear", "kmeans", "unsupervised"):
        assert 0 <= probe[name]["miou"] <= 1 and 0 <= probe[name]["pa"] <= 1
        assert np.asarray(probe[name]["confusion"]).sum() == probe[name]["num_pixels"] > 0
    assert probe["linear"]["steps"] > 0 and probe["kmeans"]["K"] == 3 and probe["kmeans"]["restarts"] == 3
    assert (tmp_path / "eval" / "figures" / "probes.png").is_file()


def test_evaluate_init_random_and_a_bad_value(tmp_path, tiny_ckpt):
    ckpt, data = tiny_ckpt
    args = ("probe=linear", "init=random", "report=false", "logger=csv", "probe_min_steps=30")
    m = evaluated(ckpt, data, tmp_path / "e", *args)
    assert m["init"] == "random" and "crf" not in m and set(m["probe"]) == {"split", "unsupervised", "linear"}
    assert 0 <= m["probe"]["linear"]["miou"] <= 1
    # 3 fit images = 1 step a pass: 20 passes, raised to probe_min_steps; the protocol is recorded
    assert m["probe"]["linear"]["steps"] == m["probe"]["linear"]["epochs"] == 30
    assert m["probe"]["linear"]["schedule"] == "cosine" and m["probe"]["linear"]["lr"] == 0.01
    logged = (tmp_path / "e" / "csv" / "metrics.csv").read_text().splitlines()
    row = dict(zip(logged[0].split(","), logged[1].split(","), strict=True))
    assert float(row["eval/probe/linear/miou"]) == pytest.approx(m["probe"]["linear"]["miou"])

    r = evaluate(ckpt, data, "probe=linaer", f"hydra.run.dir={tmp_path}/bad")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: probe='linaer': use null, linear, kmeans, all or a list such as [linear,kmeans]"
    ]
    assert not (tmp_path / "bad").exists()


def test_assignment_ablation_sees_a_bound_met_by_H_alone():
    """If every H_k of an image is one vector (an image code), p' cannot matter: the bound with uniform p'
    equals the bound with the model's p', and none of H's variance lies between the k of an image."""
    from misseg.diagnostics.shortcut import assignment_ablation

    torch.manual_seed(0)
    B, K, P, U = 4, 3, 8, 3
    g = torch.randn(B, 1, P)
    H = g.expand(B, K, P).clone()
    L = g[:, 0, :, None, None].expand(B, P, U, U) + 0.1 * torch.randn(B, P, U, U)
    out = assignment_ablation(L, H, tau=1.0)
    assert abs(out["share_uniform"] - 1) < 1e-5 and out["H_between_k"] < 1e-6
    # the opposite case: H_k shared by all images, L picks one per position: the bound needs p'
    K = P  # eight prototypes: two images rarely pick the same one at a position
    protos = 2 * torch.eye(K, P)
    H2 = protos.expand(B, K, P)
    pick = torch.randint(0, K, (B, U, U))
    L2 = protos[pick].permute(0, 3, 1, 2)
    out2 = assignment_ablation(L2, H2, tau=1.0)
    assert out2["uniform"] < out2["bound"] - 0.2 and out2["H_between_k"] > 0.99


def test_normalized_mutual_information_and_entropy():
    from misseg.diagnostics.shortcut import normalized_entropy, normalized_mutual_information

    a = torch.tensor([0, 0, 1, 1, 2, 2, -1])
    assert normalized_mutual_information(a, torch.tensor([5, 5, 3, 3, 9, 9, 0])) == pytest.approx(1.0)
    assert normalized_mutual_information(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.0)
    # a by-hand case: joint [[1/2, 0], [1/4, 1/4]]
    x, y = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 0, 1])
    ha = math.log(2)
    hb = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi = 0.5 * math.log(0.5 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / 0.125)
    assert normalized_mutual_information(x, y) == pytest.approx(2 * mi / (ha + hb))
    assert normalized_entropy(torch.tensor([0, 1, 2, 0, 1, 2]), 3) == pytest.approx(1.0)
    assert normalized_entropy(torch.tensor([0, 0, 0]), 3) == pytest.approx(0.0)


def test_conditional_nmi_discounts_what_the_given_labelling_explains():
    """Given the row: the same bands in both labellings agree on nothing beyond the row (0, while their plain NMI is
    1); the same left/right cut agrees fully (1); with one value given it is the plain NMI; and a by-hand case."""
    from misseg.diagnostics.shortcut import conditional_nmi, normalized_mutual_information

    ii, jj = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    bands, cut = (ii >= 4).long(), (jj >= 4).long()
    assert normalized_mutual_information(bands, 1 - bands) == pytest.approx(1.0)
    assert conditional_nmi(bands, 1 - bands, ii) == pytest.approx(0.0)
    assert conditional_nmi(cut, 1 - cut, ii) == pytest.approx(1.0)
    assert conditional_nmi(cut, bands, ii) == pytest.approx(0.0)
    x, y = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([1, 1, 0, 1, 0])
    assert conditional_nmi(x, y, torch.zeros(5)) == pytest.approx(normalized_mutual_information(x, y))
    # by hand: r = 0 holds x, y = (0, 0), (0, 1), (1, 0), (1, 1) (independent: I = 0), r = 1 holds (0, 0), (1, 1)
    # (identical: I = H = log 2): 4 and 2 of the 6 pixels kept (a -1 label leaves its pixel out)
    x, y = torch.tensor([0, 0, 1, 1, 0, 1, 0]), torch.tensor([0, 1, 0, 1, 0, 1, -1])
    r = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    mi, h = 1 / 3 * math.log(2), 2 / 3 * math.log(2) + 1 / 3 * math.log(2)
    assert conditional_nmi(x, y, r) == pytest.approx(2 * mi / (h + h))


def test_seeded_batches_cover_the_set_in_a_seeded_order_without_a_single_image_batch():
    from misseg.diagnostics.shortcut import seeded_batches

    data = [{"image": torch.full((3, 2, 2), float(i)), "mask": torch.full((2, 2), i)} for i in range(33)]
    batches = list(seeded_batches(data, batch_size=16, seed=0))
    assert [x.shape[0] for x, _ in batches] == [16, 16]  # the 33rd image alone is left out
    seen = torch.cat([x[:, 0, 0, 0] for x, _ in batches]).long()
    assert len(set(seen.tolist())) == 32 and not torch.equal(seen, torch.arange(32))  # shuffled, no repeats
    assert all(torch.equal(x[:, 0, 0, 0].long(), m[:, 0, 0]) for x, m in batches)  # images stay with their masks
    again = torch.cat([x[:, 0, 0, 0] for x, _ in seeded_batches(data, 16, 0)]).long()
    assert torch.equal(seen, again)


def fit_loss(probe, features, masks) -> float:
    with torch.no_grad():
        logits = probe(features, masks.shape[-2:])
    return float(torch.nn.functional.cross_entropy(logits, masks.long(), ignore_index=255))


def test_cosine_schedule_settles_where_a_constant_lr_oscillates():
    """Logistic regression is convex, but Adam at a constant lr too large for the features (P = 2048 at 1e-2,
    measured in experiments/scale) hovers above the optimum; decaying the lr to 0 lets it settle."""
    g = torch.Generator().manual_seed(0)
    features, masks = separable_data(n=32, P=64)
    noisy = features + 80 * torch.randn(features.shape, generator=g)  # overlapping classes: no zero-loss solution
    kw = dict(epochs=30, batch_size=4, seed=0, min_steps=0)
    constant, _ = fit_linear_probe(noisy, masks, 3, lr=1.0, schedule="constant", **kw)
    cosine, info = fit_linear_probe(noisy, masks, 3, lr=1.0, schedule="cosine", **kw)
    slower, _ = fit_linear_probe(noisy, masks, 3, lr=0.3, schedule="cosine", **kw)
    assert fit_loss(cosine, noisy, masks) < 0.8 * fit_loss(constant, noisy, masks)  # measured 0.683 vs 1.447
    assert abs(fit_loss(cosine, noisy, masks) - fit_loss(slower, noisy, masks)) < 0.01  # the lr matters little
    assert info["steps"] == 30 * 8  # 32 images, 4 a step
    with pytest.raises(ValueError, match="schedule='step'"):
        fit_linear_probe(noisy, masks, 3, schedule="step")


def test_principal_splits_find_a_class_split_behind_a_larger_positional_one():
    """L with a large top/bottom gradient (position only) and a smaller direction that is the class: the class
    is PC1, its sign split is exact, PC0's split is the rows, and PC0 is all position, none image identity."""
    from misseg.diagnostics.spectrum import patch_labels, principal_splits, split_miou

    g = torch.Generator().manual_seed(0)
    B, U, V = 40, 8, 8
    labels = (torch.rand(B, U, V, generator=g) < 0.5).long()
    rows = torch.linspace(-1, 1, U)[None, :, None].expand(B, U, V)
    L = torch.zeros(B, 6, U, V)
    L[:, 0] = 3 * rows  # variance 3**2 * 0.4: the larger, positional direction
    L[:, 1] = labels.float() * 2 - 1  # variance 1: the class
    L[:, 2:] = 0.05 * torch.randn(B, 4, U, V, generator=g)
    r = principal_splits(L, labels, num_classes=2, num_pcs=3)
    assert r["variance"][0] > r["variance"][1] > r["variance"][2]
    assert r["sign_split"][1] == pytest.approx(1.0) and r["class_cosine"][1] == pytest.approx(1.0, abs=1e-3)
    assert r["sign_split"][0] == pytest.approx(split_miou(rows > 0, labels, 2), abs=1e-9)
    assert r["sign_split"][0] < 0.6
    assert r["position"][0] == pytest.approx(1.0, abs=1e-3) and r["image"][0] == pytest.approx(0.0, abs=1e-3)
    assert r["position"][1] < 0.2 and r["class_split"] == pytest.approx(1.0)
    # patch labels: the majority class of each patch, 255 where half of it or more is ignored
    masks = torch.tensor([[[1, 1, 0, 255], [1, 0, 255, 255]]])
    assert patch_labels(masks, (1, 2), 2).tolist() == [[[1, 255]]]


def test_bound_ceiling_is_what_the_best_critic_reaches_against_each_pool():
    """misseg.diagnostics.ceiling against eq. 4.12 itself: with the critic T = -log q on the anchor's cluster and far
    below elsewhere (the best one for a hard partition), `bound_terms` over the pool's pairs gives the ceiling, for
    negatives from the image's other positions and from the same position of the other images."""
    from misseg.diagnostics.ceiling import bound_ceiling, same_cluster_share
    from misseg.objectives.mi import bound_terms

    torch.manual_seed(3)
    N, H, W, K = 3, 4, 4, 3
    labels = torch.randint(0, K, (N, H, W))
    labels[0, 0, 0] = -1  # ignored: neither anchor nor negative
    valid = labels >= 0
    for pool in ("own_image", "local"):
        q = same_cluster_share(labels, K, pool)
        flat, v, qf = labels.flatten(1), valid.flatten(1), q.flatten(1)
        if pool == "own_image":  # (N, HW anchor, HW negative)
            same = flat[:, :, None] == flat[:, None, :]
            pairs = v[:, :, None] & v[:, None, :] & ~torch.eye(H * W, dtype=torch.bool)
        else:  # (N anchor image, N negative image, HW)
            same = flat[:, None, :] == flat[None, :, :]
            pairs = v[:, None, :] & v[None, :, :] & ~torch.eye(N, dtype=torch.bool)[:, :, None]
        T_joint = (-qf.nan_to_num(1.0).log()).clamp_max(40.0)  # q = 0: no negative shares the cluster
        T_own = T_joint[:, :, None] if pool == "own_image" else T_joint[:, None, :]
        T_marginal = torch.where(same, T_own.expand_as(same), torch.full(same.shape, -40.0))
        best = bound_terms(T_joint, v, T_marginal, pairs)["mi"]
        # exact with the ignored pixel too: its image's anchors have fewer negatives and weigh less in the marginal
        assert bound_ceiling(labels, K, pool) == pytest.approx(float(best), abs=1e-5)


def test_bound_ceiling_ranks_partitions_by_how_often_the_pools_negatives_share_their_cluster():
    """The readings experiments/scale section 35 rests on: the constant critic's -2 log 2 for one label everywhere;
    rows (the same bands in every image) reach an equal split's -0.955 against the image's own positions and nothing
    against the same place in other images; a small cluster in each image pays against its own image, and not when
    each of the image's clusters weighs the same (own_image_balanced), nor with the K heads as negatives."""
    from misseg.diagnostics.ceiling import bound_ceiling, g

    floor, equal = -2 * math.log(2), float(g(torch.tensor(0.5)))
    assert equal == pytest.approx(-math.log(1.5) - 0.5 * math.log(3)) and float(g(torch.tensor(0.0))) == 0
    N, H, W = 8, 8, 8
    one = torch.zeros(N, H, W, dtype=torch.long)
    for pool in ("own_image", "local", "mixed", "own_image_balanced"):
        assert bound_ceiling(one, 2, pool) == pytest.approx(floor)
    rows = (torch.arange(H) >= H // 2).long()[None, :, None].expand(N, H, W)
    assert bound_ceiling(rows, 2, "own_image") == pytest.approx(equal, abs=0.01)
    assert bound_ceiling(rows, 2, "local") == pytest.approx(floor)
    small = torch.zeros(16, H, W, dtype=torch.long)
    for n in range(16):  # a 2 x 2 square (4 of 64 pixels), at another of the 16 places of the 8 x 8 crop in each image
        small[n, 2 * (n // 4) : 2 * (n // 4) + 2, 2 * (n % 4) : 2 * (n % 4) + 2] = 1
    assert bound_ceiling(small, 2, "own_image") < equal - 0.2
    assert bound_ceiling(small, 2, "own_image_balanced") == bound_ceiling(small, 2, "heads") == pytest.approx(equal)
    # mixed_balanced: the small cluster, at every place in some image, reaches the top; rows and whole images pay on
    # one half each
    whole = (torch.arange(N) % 2)[:, None, None].expand(N, H, W)
    assert bound_ceiling(small, 2, "mixed_balanced") == pytest.approx(equal, abs=0.03)
    for shortcut in (rows, whole):
        assert bound_ceiling(shortcut, 2, "mixed_balanced") == pytest.approx(float(g(torch.tensor(0.75))), abs=0.01)
    with pytest.raises(ValueError, match="unknown pool 'global'"):
        bound_ceiling(one, 2, "global")


def test_correspondence_ceiling_is_the_best_critic_value_and_rewards_partitions_the_partners_agree_with():
    """paired / unpaired against a search over the critic's value t; a partition whose correspondences share its
    clusters gains with the weight, one whose correspondences fall in the other cluster gains less."""
    import torch.nn.functional as F

    from misseg.diagnostics.ceiling import bound_ceiling, g, paired, unpaired

    t = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    for q, qp, w in ((0.3, 0.6, 2.0), (0.5, 0.5, 1.0), (0.05, 0.9, 4.0)):
        best_paired = float(((1 + w) * -F.softplus(-t) - q * F.softplus(t)).max())
        best_other = float((-qp * F.softplus(t) - w * F.softplus(-t)).max())
        assert float(paired(torch.tensor(q), w)) == pytest.approx(best_paired, abs=1e-6)
        assert float(unpaired(torch.tensor(qp), w)) == pytest.approx(best_other, abs=1e-6)
        assert float(paired(torch.tensor(q), 0.0)) == pytest.approx(float(g(torch.tensor(q))))
    N, H, W = 4, 4, 4
    rows = (torch.arange(H) >= H // 2).long()[None, :, None].expand(N, H, W)
    agree, disagree = rows.clone(), 1 - rows  # partners at the same row / at the other one
    base = bound_ceiling(rows, 2, "own_image")
    assert bound_ceiling(rows, 2, "own_image", agree, 0.0) == base
    assert bound_ceiling(rows, 2, "own_image", agree, 1.0) > bound_ceiling(rows, 2, "own_image", disagree, 1.0) + 0.3


def test_calibrate_batchnorm_measures_the_images_statistics_and_restores_the_modes():
    """Each BatchNorm's running mean becomes the equal-weight mean over the batches (momentum None), read by the
    encoder's own forward; its momentum and mode come back, and a module outside the encoder is left alone."""
    from types import SimpleNamespace

    from torch import nn

    from misseg.diagnostics.features import calibrate_batchnorm

    bn, outside = nn.BatchNorm2d(2, momentum=0.3), nn.BatchNorm2d(2)
    encoder = nn.Sequential(nn.Identity(), bn)
    module = SimpleNamespace(model=SimpleNamespace(inputs=nn.Identity(), encoder=encoder), outside=outside)
    module.model.encoder.eval()
    torch.manual_seed(0)
    batches = [torch.randn(3, 2, 4, 4) + shift for shift in (1.0, 5.0)]
    assert calibrate_batchnorm(module, batches) == 1
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-6)
    assert bn.num_batches_tracked == 2 and bn.momentum == 0.3 and not bn.training
    assert torch.equal(outside.running_mean, torch.zeros(2))


def test_evaluate_init_random_with_batchnorm_from_the_images(tmp_path, tiny_ckpt):
    ckpt, data = tiny_ckpt
    args = ("probe=linear", "init=random", "init_batchnorm=data", "report=false", "probe_min_steps=5")
    m = evaluated(ckpt, data, tmp_path / "e", *args)
    assert m["init"] == "random" and "BatchNorm statistics of the images (" in m["weights"]
    r = evaluate(ckpt, data, "init_batchnorm=data", f"hydra.run.dir={tmp_path}/bad")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: init_batchnorm=data needs init=random (got init=trained): trained and initial weights keep the "
        "BatchNorm statistics they were trained with"
    ]
    assert not (tmp_path / "bad").exists()
