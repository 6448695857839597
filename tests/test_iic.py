import math

import numpy as np
import pytest
import torch
from conftest import tiny_module

from misseg.data.augment import color_jitter, jittered_flipped_view, unflip
from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.lit.iic import IICSegModule
from misseg.objectives.iic import iic_loss_from_joint, iic_segmentation_loss, joint_distribution


def closed_form_mi(P: np.ndarray) -> float:
    pi, pj = P.sum(1, keepdims=True), P.sum(0, keepdims=True)
    nz = P > 0
    return float((P[nz] * np.log(P[nz] / (pi @ pj)[nz])).sum())


def naive_joint(p1: torch.Tensor, p2: torch.Tensor, T: int) -> torch.Tensor:
    """Reference: loop over displacements, sum_b,y,x p1[b, :, y+dy, x+dx] (outer) p2[b, :, y, x], symmetrised."""
    B, K, H, W = p1.shape
    J = torch.zeros(K, K, dtype=torch.float64)
    for dy in range(-T, T + 1):
        for dx in range(-T, T + 1):
            for y in range(H):
                for x in range(W):
                    if 0 <= y + dy < H and 0 <= x + dx < W:
                        J += torch.einsum("bi,bj->ij", p1[:, :, y + dy, x + dx].double(), p2[:, :, y, x].double())
    J = J / J.sum()
    return (J + J.T) / 2


def test_loss_on_a_toy_joint_equals_minus_closed_form_mi():
    P = np.array([[0.30, 0.05, 0.05], [0.05, 0.20, 0.05], [0.05, 0.05, 0.20]])
    out = iic_loss_from_joint(torch.tensor(P))
    assert out["loss"].item() == pytest.approx(-closed_form_mi(P), rel=1e-9)
    assert out["mi"].item() == pytest.approx(closed_form_mi(P), rel=1e-9)
    # perfectly dependent, uniform marginals: MI = log K
    out = iic_loss_from_joint(torch.eye(4, dtype=torch.float64) / 4)
    assert out["mi"].item() == pytest.approx(math.log(4), rel=1e-9)


def test_lambda_weights_the_marginals():
    P = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=torch.float64)
    pi, pj = P.sum(1, keepdim=True), P.sum(0, keepdim=True)
    expected = -(P * (P.log() - 2.0 * pi.log() - 2.0 * pj.log())).sum()
    assert iic_loss_from_joint(P, lamb=2.0)["loss"].item() == pytest.approx(expected.item(), rel=1e-9)


@pytest.mark.parametrize("lamb", [1.0, 1.5])
def test_identical_views_uniform_prediction(lamb):
    K = 5
    p = torch.full((3, K, 6, 7), 1.0 / K)
    out = iic_segmentation_loss(p, p.clone(), T=2, lamb=lamb)
    assert torch.allclose(out["joint"], torch.full((K, K), 1.0 / K**2), atol=1e-7)
    assert out["mi"].item() == pytest.approx(0.0, abs=1e-6)
    # -sum 1/K^2 (log 1/K^2 - 2 lamb log 1/K) = 2 (1 - lamb) log K
    assert out["loss"].item() == pytest.approx(2 * (1 - lamb) * math.log(K), abs=1e-5)


@pytest.mark.parametrize("T", [0, 1, 2])
def test_conv_joint_matches_naive_displacement_sum(T):
    g = torch.Generator().manual_seed(0)
    p1 = torch.softmax(torch.randn(2, 3, 5, 6, generator=g), 1)
    p2 = torch.softmax(torch.randn(2, 3, 5, 6, generator=g), 1)
    J = joint_distribution(p1, p2, T)
    assert torch.allclose(J.double(), naive_joint(p1, p2, T), atol=1e-6)
    assert J.sum().item() == pytest.approx(1.0, abs=1e-6) and torch.allclose(J, J.T)


def test_identical_one_hot_views_give_log_k_and_finite_gradients():
    K = 4
    labels = torch.arange(K).repeat_interleave(4).reshape(1, 4, 4).expand(2, 4, 4)
    logits = (torch.nn.functional.one_hot(labels, K).permute(0, 3, 1, 2).float() * 1e4).requires_grad_()
    p = torch.softmax(logits, 1)  # exactly one-hot in float32: the joint has zeros, eps keeps logs finite
    out = iic_segmentation_loss(p, p, T=0)
    out["loss"].backward()
    assert out["mi"].item() == pytest.approx(math.log(K), rel=1e-5)
    assert torch.isfinite(out["loss"]) and torch.isfinite(logits.grad).all()
    # displacements across region borders lower the MI below log K but stay finite
    assert 0 < iic_segmentation_loss(p, p, T=1)["mi"].item() < math.log(K)


def test_valid_mask_removes_pixels_from_every_pair():
    g = torch.Generator().manual_seed(1)
    p1 = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1)
    p2 = torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1)
    valid = torch.ones(2, 6, 6, dtype=torch.bool)
    valid[1] = False  # image 1 excluded entirely -> same joint as image 0 alone
    assert torch.allclose(joint_distribution(p1, p2, 1, valid), joint_distribution(p1[:1], p2[:1], 1), atol=1e-6)


def test_second_view_flip_is_undone_and_jitter_stays_in_range():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 5, 7, generator=g)
    x = x.clamp(-1.5, 1.5)  # inside the normalised range of [0, 1] images: no clamping in the round trip
    view, flipped = jittered_flipped_view(x, jitter=0.0, hue=0.0, flip=True, generator=g)
    assert flipped.any() and (~flipped).any()
    assert torch.allclose(view[~flipped], x[~flipped], atol=1e-5)
    assert torch.allclose(view[flipped], x[flipped].flip(-1), atol=1e-5)
    assert torch.allclose(unflip(view, flipped), x, atol=1e-5)
    rgb = torch.rand(4, 3, 5, 5, generator=g)
    out = color_jitter(rgb, 0.4, 0.4, 0.4, 0.1, generator=g)
    assert out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, rgb)
    # strength 0 is the identity (hue rotation by 0 included)
    assert torch.allclose(color_jitter(rgb, 0, 0, 0, 0), rgb, atol=1e-6)


def test_vflip_takes_image_rows_away_as_a_cue_the_two_views_share():
    """vflip=true: the second view is also flipped vertically at random, and unflip undoes both flips. A cluster map
    that follows image rows whatever the content (the split IIC and MI find on the frozen ImageNet network) then
    disagrees with its own second view, so its MI falls; a map that follows content keeps log K."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 6, 6, generator=g).clamp(-1.5, 1.5)
    view, flipped = jittered_flipped_view(x, jitter=0.0, hue=0.0, flip=True, generator=g, vflip=True)
    assert flipped.shape == (16, 2) and flipped[:, 1].any() and (~flipped[:, 1]).any()
    both = flipped.all(1)
    assert both.any() and torch.allclose(view[both], x[both].flip(-1).flip(-2), atol=1e-5)
    assert torch.allclose(unflip(view, flipped), x, atol=1e-5)
    # flip=false keeps the vertical flips (it used to drop them silently): no image is mirrored left-right
    view, flipped = jittered_flipped_view(x, jitter=0.0, hue=0.0, flip=False, generator=g, vflip=True)
    assert not flipped[:, 0].any() and flipped[:, 1].any() and (~flipped[:, 1]).any()
    assert torch.allclose(view[flipped[:, 1]], x[flipped[:, 1]].flip(-2), atol=1e-5)
    assert torch.allclose(unflip(view, flipped), x, atol=1e-5)
    # vflip=false draws what it always drew: the horizontal flips only, from the same stream
    _, h_only = jittered_flipped_view(x, jitter=0.0, hue=0.0, flip=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(h_only, torch.rand(16, generator=torch.Generator().manual_seed(1)) < 0.5)

    def rows(img):  # top half cluster 0, bottom half cluster 1, whatever the image
        p = torch.zeros(img.shape[0], 2, *img.shape[-2:])
        p[:, 0, :3], p[:, 1, 3:] = 1, 1
        return p

    def content(img):  # the sign of the first channel
        return torch.stack([(img[:, 0] < 0).float(), (img[:, 0] >= 0).float()], 1)

    def mi(f, vflip):
        v, fl = jittered_flipped_view(x, jitter=0.0, hue=0.0, flip=True, generator=g, vflip=vflip)
        return float(iic_segmentation_loss(f(x), unflip(f(v), fl), T=0)["mi"])

    assert mi(rows, vflip=False) == pytest.approx(math.log(2), abs=1e-4)
    assert mi(rows, vflip=True) < math.log(2) - 0.2
    assert mi(content, vflip=True) == pytest.approx(mi(content, vflip=False), abs=1e-4)


def test_the_affine_critic_is_trained_by_the_modules_optimizer():
    """critic=affine's two scalars live in the objective, a registered submodule: Adam must update them."""
    module = tiny_module("mi", "K=2", "objective.critic=affine", "objective.negatives=own_image", num_classes=2)
    optimizer = module.configure_optimizers()
    before = module.objective.critic_log_scale.detach().clone()
    module.training_step({"image": torch.randn(4, 3, 16, 16)}, 0)["loss"].backward()
    optimizer.step()
    assert module.objective.critic_log_scale.detach() != before
    assert "objective.critic_bias" in module.state_dict()


@pytest.mark.parametrize("method", ["iic", "mi", "mi_hard", "mi_own_image"])
def test_a_training_step_with_a_vertically_flipped_second_view_is_finite(method):
    extra = ("objective.vflip=true",) if method == "iic" else ("objective.views=2", "objective.view_vflip=true")
    if method == "mi_hard":  # and S from the predicted cluster (objectives/mi.py straight_through)
        method, extra = "mi", (*extra, "objective.hard_assignment=true")
    if method == "mi_own_image":  # and negatives from the image itself (objectives/mi.py jsd_own_image)
        method, extra = "mi", (*extra, "objective.negatives=own_image")
    module = tiny_module(method, "K=2", *extra, num_classes=2)
    out = module.training_step({"image": torch.randn(4, 3, 16, 16)}, 0)
    loss = out["loss"] if isinstance(out, dict) else out  # MI's step returns a dict
    loss.backward()
    assert torch.isfinite(loss)


def test_a_shifted_second_view_moves_each_image_by_whole_cells_and_trains():
    """view_shift: the second view is the first rolled by whole cells of L's grid (no jitter, no flip here), so its
    L rolled back is the first view's L wherever the receptive field did not cross the seam; the step trains."""
    torch.manual_seed(0)
    extra = ("objective.views=2", "objective.view_shift=1", "objective.view_jitter=0", "objective.view_hue=0")
    module = tiny_module("mi", "K=2", *extra, "objective.view_hflip=false", "objective.negatives=own_image")
    seen = {}
    features = module.features

    def spy(x):  # the step's two forward passes: the first view, then the moved one
        seen.setdefault("x", []).append(x)
        return features(x)

    module.features = spy
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    image = (torch.rand(4, 3, 16, 16) - mean) / std  # a normalised image in [0, 1]: the view's clamp keeps it
    out = module.training_step({"image": image}, 0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    x, x2 = seen["x"]
    cell = 16 // module.model(x)[0].shape[-1]
    moved = [(dy, dx) for dy in (-cell, 0, cell) for dx in (-cell, 0, cell)]
    for b in range(4):  # each image is its own copy of x rolled by one of the allowed shifts, in pixels
        assert any(torch.allclose(x2[b], torch.roll(x[b], s, dims=(-2, -1)), atol=1e-5) for s in moved)


def test_module_training_step_is_finite_and_validation_uses_the_shared_metric():
    module = tiny_module("iic", "K=3", "K_over=6", "objective.T=1", num_classes=3)
    assert isinstance(module, IICSegModule)
    batch = {"image": torch.randn(2, 3, 16, 16), "mask": torch.randint(0, 3, (2, 16, 16))}
    loss = module.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)
    classes, confidence, probs = module.predict(batch["image"])
    assert classes.shape == (2, 16, 16) and probs.shape == (2, 3, 16, 16) and confidence.min() >= 1 / 3 - 1e-6
    module.validation_step(batch, 0)
    assert int(module.val_metric.confusion.sum()) == 2 * 16 * 16


def test_every_experiment_composes_with_model_iic():
    """Experiments set MI keys under model.*; IICSegModule must accept each of them (or instantiate fails)."""
    import inspect
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from misseg.runs.config import config_dir

    params = set(inspect.signature(IICSegModule.__init__).parameters)
    names = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        for name in names:
            cfg = compose("train", overrides=[f"experiment={name}", "model=iic"])
            assert cfg.model._target_ == "misseg.lit.iic.IICSegModule"
            assert set(cfg.model) - {"_target_"} <= params, (name, set(cfg.model) - params)
