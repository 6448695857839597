"""misseg.lit.build: one way to build a method, and checkpoints that rebuild it from their path alone."""

import pytest
import torch
from conftest import tiny_module

from misseg.lit.build import compose_model, load_module
from misseg.runs.errors import ConfigError


def save_checkpoint(module, path) -> None:
    """What misseg's training writes that load_module reads: weights, hparams, class and composed model config."""
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "misseg_class": "misseg.lit.mi.MISegModule",
            "misseg_model": module.model_config,
        },
        path,
    )


def test_a_checkpoint_carries_its_model_config_and_rebuilds_the_same_module(tmp_path):
    torch.manual_seed(123)  # not the random init's seed-0 draw, whatever an earlier test left the global RNG at
    module = tiny_module("mi", "K=3", "heads.bottleneck=4", "objective.views=2")
    save_checkpoint(module, tmp_path / "m.ckpt")
    loaded = load_module(tmp_path / "m.ckpt")
    assert loaded.model_config == module.model_config and loaded.objective.views == 2
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in module.state_dict().items())
    fresh = load_module(tmp_path / "m.ckpt", random_init=True)
    assert not torch.equal(fresh.model.heads.weight, module.model.heads.weight)
    torch.rand(3)  # a random init is the seed's draw, whatever the global RNG did in between
    assert torch.equal(load_module(tmp_path / "m.ckpt", random_init=True).model.heads.weight, fresh.model.heads.weight)
    other = load_module(tmp_path / "m.ckpt", random_init=True, seed=1)
    assert not torch.equal(other.model.heads.weight, fresh.model.heads.weight)


@pytest.mark.parametrize("method", ["mi", "iic"])
def test_a_checkpoint_with_the_flat_keys_of_before_still_loads(tmp_path, method):
    """Checkpoints written before the model was composed from groups hold flat hyper_parameters and the old
    class path; IIC's also hold the MI keys it accepted and ignored."""
    new = tiny_module(method, "K=3", "encoder.width=4", *(["heads.width=2"] if method == "mi" else []))
    flat = dict(K=3, P=8, d=2, sobel=False, encoder_depth=2, encoder_width=4, encoder_max_width=512, kernel=3)
    flat |= dict(lr=1e-4, weight_decay=0.0, matching="hungarian", num_classes=3, ignore_in_loss=False)
    if method == "mi":
        flat |= dict(head_width=2, head_shared_layers=1, head_pool=4, h_bottleneck=None, region_heads=False)
        flat |= dict(tau=None, views=1, view_jitter=0.4, view_hue=0.1, negatives="local", backbone=None)
        old_class = "misseg.module.MISegModule"
    else:
        flat |= dict(K_over=None, T=1, lamb=1.0, jitter=0.4, hue=0.1, flip=True, head_width=16, tau=None)
        old_class = "misseg.iic_module.IICSegModule"
    state = {"state_dict": new.state_dict(), "hyper_parameters": flat, "misseg_class": old_class}
    torch.save(state, tmp_path / "old.ckpt")
    loaded = load_module(tmp_path / "old.ckpt")
    assert type(loaded) is type(new)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in new.state_dict().items())


def test_compose_model_refuses_unknown_keys_in_one_line():
    assert compose_model("iic", ["K=3"])["objective"]["T"] == 1
    with pytest.raises(ConfigError, match="heads"):
        compose_model("iic", ["heads.width=2"])


def test_the_correspondence_lever_keeps_a_frozen_copy_of_the_initial_encoder_that_checkpoints_carry(tmp_path):
    module = tiny_module("mi", "K=3", "objective.correspondence_weight=1")
    start = {k: v.clone() for k, v in module.model.encoder.state_dict().items()}
    assert all(torch.equal(v, module.reference.state_dict()[k]) for k, v in start.items())
    assert not any(p.requires_grad for p in module.reference.parameters())
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    module.train()
    batch = {"image": torch.randn(4, 3, 16, 16), "mask": torch.randint(0, 3, (4, 16, 16))}
    out = module.training_step(batch, 0)
    out["loss"].backward()
    opt.step()
    assert not module.reference.training  # Lightning's train() does not unfreeze it
    assert all(torch.equal(v, module.reference.state_dict()[k]) for k, v in start.items())
    assert not all(torch.equal(v, module.model.encoder.state_dict()[k]) for k, v in start.items())
    save_checkpoint(module, tmp_path / "m.ckpt")
    loaded = load_module(tmp_path / "m.ckpt")
    assert all(torch.equal(v, loaded.reference.state_dict()[k]) for k, v in start.items())
    assert tiny_module("mi", "K=3").reference is None  # off by default: checkpoints keep their keys


def test_the_crf_target_lever_trains_on_the_crf_refined_prediction_and_leaves_ignored_pixels_out():
    from omegaconf import OmegaConf

    from misseg.diagnostics import crf
    from misseg.lit.mi import crf_targets
    from misseg.runs.validation import check_model_parts

    torch.manual_seed(0)
    module = tiny_module("mi", "K=2", "objective.crf_target_weight=1", "ignore_in_loss=true").train()
    x = torch.rand(3, 3, 16, 16)
    x[:, :, :, 8:] += 2.0  # a strong colour edge down the middle of every image
    mask = torch.randint(0, 2, (3, 16, 16))
    mask[0, :4] = 255  # pixels without a gradient (COCO-Stuff things) get no target either
    L, H = module.model(x)
    targets = crf_targets(x, L, H, module.model.tau, mask != 255)
    assert targets.shape == (3, 16, 16)
    assert (targets[0, :4] == 255).all() and set(targets[mask != 255].unique().tolist()) <= {0, 1}
    assert (crf_targets(x, L, H, module.model.tau, None) != 255).all()
    try:  # crf_workers=2 (train.py's use_crf_workers): the same targets and the same loss from worker processes
        crf.set_workers(2)
        assert torch.equal(crf_targets(x, L, H, module.model.tau, mask != 255), targets)
        pooled = module.training_step({"image": x, "mask": mask}, 0)["loss"].detach()
    finally:
        crf.set_workers(0)
    out = module.training_step({"image": x, "mask": mask}, 0)
    assert torch.isfinite(out["loss"]) and torch.equal(pooled, out["loss"].detach())
    out["loss"].backward()
    assert module.model.encoder.parameters().__next__().grad is not None
    with pytest.raises(ConfigError, match="crf_target_weight=-1"):
        check_model_parts(OmegaConf.create(compose_model("mi", ["objective.crf_target_weight=-1"])))


def test_the_crf_target_lever_is_refused_in_one_line_without_the_crf_package(monkeypatch):
    from omegaconf import OmegaConf

    import misseg.diagnostics.crf as crf
    from misseg.runs.validation import check_model_parts

    monkeypatch.setattr(crf, "crf_available", lambda: False)
    with pytest.raises(ConfigError, match=r"crf_target_weight=1\.0: .*pip install 'misseg\[crf\]'"):
        check_model_parts(OmegaConf.create(compose_model("mi", ["objective.crf_target_weight=1"])))
    check_model_parts(OmegaConf.create(compose_model("mi", [])))  # off: the package is not needed


def test_the_crf_target_starts_at_its_training_step(monkeypatch):
    from omegaconf import OmegaConf

    import misseg.lit.mi as lit_mi
    from misseg.runs.validation import check_model_parts

    made = []
    real = lit_mi.crf_targets
    monkeypatch.setattr(lit_mi, "crf_targets", lambda *a: made.append(1) or real(*a))
    module = tiny_module("mi", "K=2", "objective.crf_target_weight=1", "objective.crf_target_start=3").train()
    logged = {}
    monkeypatch.setattr(module, "log_dict", lambda values, **kw: logged.update(values))
    batch = {"image": torch.rand(2, 3, 16, 16), "mask": torch.zeros(2, 16, 16, dtype=torch.long)}
    for step, runs in ((0, 0), (2, 0), (3, 1), (7, 2)):  # the optimizer step Lightning counts (global_step)
        monkeypatch.setattr(type(module), "global_step", property(lambda self, step=step: step))
        logged.clear()
        assert torch.isfinite(module.training_step(batch, 0)["loss"])
        assert len(made) == runs and ("train/crf_target" in logged) == (step >= 3)
    with pytest.raises(ConfigError, match="crf_target_start=-1"):
        check_model_parts(OmegaConf.create(compose_model("mi", ["objective.crf_target_start=-1"])))
    with pytest.raises(ConfigError, match=r"crf_target_start=150 starts the CRF target: set .*crf_target_weight > 0"):
        check_model_parts(OmegaConf.create(compose_model("mi", ["objective.crf_target_start=150"])))
