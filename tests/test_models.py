import pytest
import torch
from conftest import tiny_module

from misseg.models.encoder import LocalEncoder
from misseg.models.heads import HighLevelHeads
from misseg.models.segmenter import MISegmenter
from misseg.models.sobel import SobelInput
from misseg.objectives.mi import region_conditioned


def test_shapes_and_stride():
    m = tiny_module("mi", "K=3", "P=16", "d=4", "encoder.depth=3", "encoder.width=8", "heads.width=4").model
    assert isinstance(m, MISegmenter)
    L, H = m(torch.randn(2, 3, 32, 48))
    assert L.shape == (2, 16, 8, 12) and H.shape == (2, 3, 16)
    classes, conf, p = m.eval().predict(torch.randn(2, 3, 32, 48))
    assert classes.shape == (2, 32, 48) and conf.shape == (2, 32, 48) and p.shape == (2, 3, 32, 48)
    assert torch.allclose(conf, p.max(1).values) and torch.equal(classes, p.argmax(1))
    assert m.tau == 16**-0.5


def test_batched_heads_equal_a_loop_over_k():
    torch.manual_seed(0)
    K, P, w = 3, 8, 4
    heads = HighLevelHeads(K, P, width=w, shared_layers=1, pool=2).eval()
    L = torch.randn(2, P, 8, 8)
    H = heads(L)
    z = heads.pool(heads.per_class(heads.shared(L)))
    for k in range(K):
        zk = z[:, k * w : (k + 1) * w].flatten(1)
        hk = zk @ heads.weight[k] + heads.bias[k]
        hk = torch.nn.functional.layer_norm(hk, (P,)) * heads.norm_weight[k] + heads.norm_bias[k]
        assert torch.allclose(H[:, k], hk, atol=1e-5)


def test_sobel_channels():
    s = SobelInput(True)
    x = torch.zeros(1, 3, 6, 6)
    x[..., 3:] = 1.0  # vertical edge: dx responds, dy does not
    y = s(x)
    assert y.shape == (1, 5, 6, 6)
    assert y[0, 3].abs().sum() > 0 and y[0, 4].abs().sum() == 0
    assert LocalEncoder(in_channels=5, P=4, d=2, depth=2, width=4)(y).shape == (1, 4, 3, 3)


def test_bottleneck_heads_pass_through_b_dims():
    torch.manual_seed(0)
    K, P, b = 3, 16, 2
    heads = HighLevelHeads(K, P, width=4, pool=2, bottleneck=b).eval()
    L = torch.randn(4, P, 8, 8)
    H = heads(L)
    assert H.shape == (4, K, P) and heads.weight.shape == (K, 4 * 2 * 2, b)
    # before the LayerNorm, every H_k lies in the b-dim column space of the shared up-projection
    z = heads.pool(heads.per_class(heads.shared(L))).reshape(4, K, -1)
    pre = heads.up(torch.einsum("bkf,kfp->bkp", z, heads.weight) + heads.bias)
    centred = pre.reshape(-1, P) - heads.up.bias
    assert torch.linalg.matrix_rank(centred, atol=1e-4) == b
    with pytest.raises(ValueError, match="model.heads.bottleneck=0"):
        HighLevelHeads(K, P, bottleneck=0)


def test_region_conditioned_H_adds_the_p_weighted_mean_of_L():
    torch.manual_seed(0)
    B, K, P, U, V, tau = 2, 3, 5, 4, 6, 0.7
    L, H = torch.randn(B, P, U, V), torch.randn(B, K, P)
    out = region_conditioned(L, H, tau)
    for b in range(B):
        for k in range(K):
            p = torch.softmax(tau * torch.einsum("kp,puv->kuv", H[b], L[b]), 0)[k]
            R = (p * L[b]).sum((1, 2)) / p.sum()
            assert torch.allclose(out[b, k], H[b, k] + R, atol=1e-5)


def test_region_heads_segmenter_trains_and_predicts():
    m = tiny_module(
        "mi",
        "K=3",
        "P=16",
        "d=4",
        "encoder.depth=3",
        "encoder.width=8",
        "heads.width=4",
        "heads.region=true",
        "heads.bottleneck=4",
    ).model
    x = torch.randn(2, 3, 32, 32)
    L, H = m(x)
    H0 = m.heads(L)
    assert H.shape == (2, 3, 16) and not torch.allclose(H, H0)
    assert torch.allclose(H, region_conditioned(L, H0, m.tau), atol=1e-5)
    classes, _, _ = m.eval().predict(x)
    assert classes.shape == (2, 32, 32)


def test_centered_heads_standardise_the_pooled_features_over_the_images():
    """heads.center: each extractor's pooled features have zero mean and unit variance over the batch before the
    linear map, so H_k depends on the image more than with the default heads (same weights and input)."""
    from misseg.diagnostics.shortcut import assignment_ablation

    torch.manual_seed(0)
    L = torch.randn(8, 16, 8, 8)
    seen = []
    shares = {}
    for center in (False, True):
        torch.manual_seed(1)
        heads = HighLevelHeads(K=3, P=16, width=4, center=center).train()
        if center:
            heads.center.register_forward_hook(lambda m, i, o: seen.append((i[0].detach(), o.detach())))
        shares[center] = assignment_ablation(L, heads(L), 0.25)["H_between_k"]
    pooled, z = seen[0]
    assert torch.allclose(z.mean(0), torch.zeros(z.shape[1]), atol=1e-5)
    before = pooled.var(0, unbiased=False)  # BatchNorm divides by sqrt(var + eps)
    assert torch.allclose(z.var(0, unbiased=False), before / (before + 1e-5), atol=1e-4)
    assert shares[True] < shares[False] - 0.05
    heads.eval()  # running statistics: one image at a time works, as in predict
    assert heads(L[:1]).shape == (1, 3, 16)


def test_centered_heads_are_composed_from_config():
    module = tiny_module("mi", "K=3", "heads.center=true")
    assert isinstance(module.model.heads.center, torch.nn.BatchNorm1d)
    L, H = module.model(torch.randn(4, 3, 16, 16))
    assert H.shape == (4, 3, 8)


def test_receptive_field_is_measured_through_saturating_activations_too():
    """describe.receptive_field: the thesis encoder's 23 px (issue 14), and EfficientNet-Lite's ReLU6, which
    would close every path of the all-positive structural copy, is opened like max pooling."""
    from conftest import tiny_module

    from misseg.models.backbone import TimmBackbone
    from misseg.models.describe import describe, receptive_field

    thesis = tiny_module("mi", "K=2", "d=4", "encoder.depth=4", "encoder.width=4").model.encoder
    assert receptive_field(thesis, 3, 128) == 23
    effnet = TimmBackbone("tf_efficientnet_lite0", P=4, d=4, stride=8, dilate=True, upsample=2)
    assert receptive_field(effnet, 3, 64) > 23
    assert "stride 4" in describe(tiny_module("mi", "K=2", "model/encoder=effnet_lite0", "d=4"), size=64)


def prototype_module(K: int = 3):
    from misseg.lit.build import build_module, compose_model

    overrides = ["P=8", "d=2", "encoder.depth=2", "encoder.width=4", "model/heads=prototypes", f"K={K}"]
    return build_module(compose_model("mi", overrides), None)


def test_prototype_heads_are_one_learned_vector_per_class_for_every_image():
    from misseg.models.prototypes import PrototypeHeads

    module = prototype_module()
    assert isinstance(module.model.heads, PrototypeHeads)
    L, H = module.model(torch.randn(4, 3, 16, 16))
    assert H.shape == (4, 3, 8) and torch.equal(H[0], H[3])
    assert torch.allclose(H.norm(dim=2), torch.full((4, 3), 8**0.5), atol=1e-3)  # LayerNorm scale: sqrt(P)
    module.objective(L, H)["loss"].backward()
    assert module.model.heads.prototypes.grad.abs().sum() > 0  # the prototypes learn through p' and S


def test_centroid_heads_are_running_means_of_the_L_each_class_is_predicted_for():
    """Online K-means on L (models/centroids.py): no parameters; the first step seeds K distinct positions, later
    steps move each centre towards the mean of the positions whose nearest centre it is, a class no position
    chose moves to a position, and invalid positions (COCO-Stuff things) are not read."""
    from misseg.models.centroids import CentroidHeads

    torch.manual_seed(0)
    seeding = CentroidHeads(K=8, P=4)
    assert not list(seeding.parameters()) and not seeding.seeded
    distinct = torch.randn(1, 4, 2, 4)
    assert seeding.kmeans_step(distinct) is None  # the first step seeds K distinct positions (all 8), no shift
    positions = distinct.flatten(2)[0].T
    assert seeding.seeded and {tuple(c.tolist()) for c in seeding.centroids} == {tuple(x.tolist()) for x in positions}
    heads = CentroidHeads(K=2, P=4, momentum=0.5)
    a, b = torch.tensor([4.0, 0, 0, 0]), torch.tensor([0, 0, 0, 4.0])
    L = torch.stack([a, b])[torch.arange(8) % 2].T.reshape(1, 4, 2, 4).clone()  # a and b alternate, 4 of each
    heads.centroids.copy_(torch.stack([a, b]))
    heads.seeded.fill_(True)
    H = heads(L)
    assert H.shape == (1, 2, 4) and torch.allclose(H.norm(dim=2), torch.full((1, 2), 2.0), atol=1e-3)
    pred = torch.einsum("kp,bpuv->bkuv", H[0], L).argmax(1).flatten()
    assert torch.equal(pred, torch.arange(8) % 2)  # the nearest centre: the two alternating groups
    assert heads.kmeans_step(L) == (0, 0)  # each centre is its group's mean already: K-means has settled, no shift
    shifted = L + 2.0  # every position moves by +2: each centre halfway there (momentum 0.5)
    before = heads.centroids.clone()
    shift, reseeds = heads.kmeans_step(shifted)
    assert torch.allclose(heads.centroids, before + 1.0) and reseeds == 0
    assert 0 < shift < 1  # H_k turns towards the shifted group by less than its own length
    heads.centroids[1] = -(a + b)  # a centre no position is nearest to...
    assert heads.kmeans_step(L).reseeds == 1
    assert any(torch.equal(heads.centroids[1], L[0, :, i, j]) for i in range(2) for j in range(4))  # ...re-seeded
    valid = torch.zeros(1, 2, 4, dtype=torch.bool)
    valid[0, :, 0::2] = True  # only the a positions (valid is at image resolution; here U, V = H, W)
    heads.centroids.copy_(torch.stack([a, b]))
    heads.kmeans_step(L, valid)
    assert torch.equal(heads.centroids[0], a)  # the mean of the valid positions is a
    assert torch.equal(heads.centroids[1], a)  # b's centre got no valid position: re-seeded on a valid one
    before = heads.centroids.clone()
    assert heads.kmeans_step(L, torch.zeros(1, 2, 4, dtype=torch.bool)) is None  # no valid position: nothing moves
    assert torch.equal(heads.centroids, before)


def test_an_absent_class_waits_reseed_after_batches_before_its_centre_is_thrown_away():
    """A class no position chose keeps its centre for reseed_after - 1 batches (its content may be in the next
    batch's images) and moves to a position at the reseed_after-th; a batch that chooses it resets its count."""
    from misseg.models.centroids import CentroidHeads

    torch.manual_seed(0)
    a, far = torch.tensor([4.0, 0, 0, 0]), torch.tensor([0, 4.0, 0, 0])
    only_a = a[:, None].expand(4, 8).reshape(1, 4, 2, 4).clone()
    with_far = torch.stack([a, far])[torch.arange(8) % 2].T.reshape(1, 4, 2, 4).clone()
    heads = CentroidHeads(K=2, P=4, momentum=0.5, reseed_after=3)
    heads.centroids.copy_(torch.stack([a, far]))
    heads.seeded.fill_(True)
    for _ in range(2):  # far's class is absent: it waits where it is
        assert heads.kmeans_step(only_a).reseeds == 0 and torch.equal(heads.centroids[1], far)
    heads.kmeans_step(with_far)  # chosen again: the wait starts over
    assert heads.idle.tolist() == [0, 0]
    for _ in range(2):
        assert heads.kmeans_step(only_a).reseeds == 0
    assert heads.kmeans_step(only_a).reseeds == 1  # the third batch in a row without it
    assert torch.equal(heads.centroids[1], a) and heads.idle.tolist() == [0, 0]
    old = {k: v for k, v in heads.state_dict().items() if k != "idle"}  # a checkpoint from before the counter
    fresh = CentroidHeads(K=2, P=4, reseed_after=3)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.centroids, heads.centroids) and fresh.idle.tolist() == [0, 0]
    with pytest.raises(ValueError, match="reseed_after=0"):
        CentroidHeads(K=2, P=4, reseed_after=0)


def test_merge_centres_joins_the_centres_that_lie_together_whatever_their_number():
    """Average linkage (models/centroids.py): three bunches of centres, one of them holding half of the centres (a
    large class over-clustered), come back as three classes numbered by their first centre; K = C merges nothing."""
    from misseg.models.centroids import merge_centres

    torch.manual_seed(0)
    directions = torch.eye(3, 32) * 6  # three far-apart directions
    bunch = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])[torch.randperm(12)]
    H = directions[bunch] + torch.randn(12, 32)
    groups = merge_centres(H, 3)
    first = {int(b): i for i, b in reversed(list(enumerate(bunch)))}  # each bunch's first centre
    order = sorted(first, key=first.get)
    assert torch.equal(groups, torch.tensor([order.index(int(b)) for b in bunch]))
    assert torch.equal(merge_centres(H, 12), torch.arange(12))
    assert merge_centres(H, 1).unique().tolist() == [0]


def test_coassignment_groups_merge_the_centres_that_share_positions_whatever_the_sizes():
    """Co-assignment merge: centres 0, 1, 2 split one region six times the size of classes 3 and 4 (its positions
    hold two of them at once), 3 and 4 share no position: the region is merged whole and the small classes stay
    apart, though merging them would balance the sizes. The merge reads A = E[p'_k p'_l] only."""
    from misseg.models.centroids import coassignment_groups

    region = torch.tensor([[0.5, 0.5, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0.5, 0, 0.5, 0, 0]])  # p' inside the region
    p = torch.cat([region.repeat(20, 1), torch.eye(5)[[3, 4]].repeat(5, 1)])  # the region 6x larger than 3 or 4
    A = p.T @ p / len(p)
    assert coassignment_groups(A, 3).tolist() == [0, 0, 0, 1, 2]
    assert coassignment_groups(A, 5).tolist() == [0, 1, 2, 3, 4]


def test_over_clustered_centroid_heads_show_the_bound_m_K_centres_and_predict_K_classes():
    """overcluster = m: H has m K rows (the bound's clusters); every K-means step re-merges them into K classes
    (`groups`, by the co-assignment of the step's positions, or by average linkage of the centres); the prediction's
    p over the K classes is the sum of p' over each class's centres. With m = 1 the heads keep the K-centre
    checkpoint keys (no `groups`); an over-clustered checkpoint without the co-assignment loads its groups."""
    from misseg.lit.build import build_module, compose_model
    from misseg.models.centroids import CentroidHeads, coassignment_groups, merge_centres
    from misseg.objectives.mi import soft_assignment

    assert "groups" not in CentroidHeads(K=3, P=4).state_dict()
    with pytest.raises(ValueError, match="overcluster=0"):
        CentroidHeads(K=2, P=4, overcluster=0)
    with pytest.raises(ValueError, match="merge='ward'"):
        CentroidHeads(K=2, P=4, overcluster=2, merge="ward")
    overrides = ["P=8", "d=2", "encoder.depth=2", "encoder.width=4", "model/heads=centroids", "K=3"]
    batch = {"image": torch.randn(4, 3, 16, 16), "mask": torch.randint(0, 3, (4, 16, 16))}
    for merge in ("centres", "coassignment"):
        torch.manual_seed(0)
        module = build_module(compose_model("mi", [*overrides, "heads.overcluster=3", f"heads.merge={merge}"]), None)
        module.train()
        module.log_dict = lambda *args, **kwargs: None
        for step in range(3):
            module.training_step(batch, step)["loss"].backward()
        heads = module.model.heads
        assert heads.centroids.shape == (9, 8) and module.model(batch["image"])[1].shape == (4, 9, 8)
        if merge == "centres":
            assert torch.equal(heads.groups, merge_centres(torch.nn.functional.layer_norm(heads.centroids, (8,)), 3))
        else:
            assert torch.allclose(heads.coassignment.sum(), torch.tensor(1 - 0.9**2))  # two steps into the mean
            assert torch.equal(heads.groups, coassignment_groups(heads.coassignment, 3))
    assert heads.groups.unique().tolist() == [0, 1, 2]  # exactly K classes, each with at least one centre
    assert "heads.groups" in module.model.state_dict()  # checkpoints carry the merge the prediction used
    module.eval()
    classes, _, p = module.predict(batch["image"])
    L, H = module.model(batch["image"])
    per_centre = soft_assignment(L, H, module.model.tau)
    by_hand = torch.stack([per_centre[:, heads.groups == c].sum(1) for c in range(3)], 1)
    assert p.shape == (4, 3, 16, 16) and torch.allclose(p.sum(1), torch.ones(4, 16, 16), atol=1e-5)
    assert torch.allclose(module.model.probs(L, H), by_hand, atol=1e-6)
    assert classes.max() <= 2
    older = {k: v for k, v in heads.state_dict().items() if k != "coassignment"}  # section 55's first runs
    fresh = CentroidHeads(K=3, P=8, overcluster=3)
    fresh.load_state_dict(older)
    assert torch.equal(fresh.groups, heads.groups) and not fresh.coassignment.any()


def test_the_coassignment_averages_over_merge_momentum_and_restarts_a_reseeded_centre():
    """merge_momentum sets the co-assignment's running mean (None: the centres' momentum, section 55's runs); a centre
    re-seeded by the step (no position chose it) is a new cluster, so its row and column of A start again from 0."""
    from misseg.models.centroids import CentroidHeads

    with pytest.raises(ValueError, match="merge_momentum=1.0"):
        CentroidHeads(K=2, P=4, overcluster=2, merge_momentum=1.0)
    assert CentroidHeads(K=2, P=4, overcluster=2).merge_momentum == 0.9
    heads = CentroidHeads(K=2, P=4, overcluster=2, merge_momentum=0.99)
    heads.seeded.fill_(True)
    heads.centroids.copy_(torch.eye(4))
    L = torch.eye(4)[[0, 1, 2, 3]].repeat_interleave(4, 0).T.reshape(1, 4, 4, 4)  # every centre holds 4 positions
    heads.kmeans_step(L, tau=1.0)
    assert torch.allclose(heads.coassignment.sum(), torch.tensor(0.01)) and heads.coassignment.diagonal().all()
    L[:, :, 3] = L[:, :, 0].clone()  # centre 3's positions are now centre 0's: nothing chooses 3, it is re-seeded
    heads.kmeans_step(L, tau=1.0)
    assert not heads.coassignment[3].any() and not heads.coassignment[:, 3].any()
    assert heads.coassignment[:3, :3].diagonal().all()  # the others keep their running mean


def test_a_training_step_moves_the_centroids_not_the_optimiser(monkeypatch):
    from misseg.lit.build import build_module, compose_model

    overrides = ["P=8", "d=2", "encoder.depth=2", "encoder.width=4", "model/heads=centroids", "K=3"]
    module = build_module(compose_model("mi", overrides), None)
    module.train()
    logged = {}
    monkeypatch.setattr(module, "log_dict", lambda values, **kw: logged.update(values))
    batch = {"image": torch.randn(4, 3, 16, 16), "mask": torch.randint(0, 3, (4, 16, 16))}
    module.training_step(batch, 0)
    first = module.model.heads.centroids.clone()
    assert module.model.heads.seeded and first.abs().sum() > 0
    assert "train/centroid_shift" not in logged  # the seeding step moves nothing
    out = module.training_step(batch, 1)
    assert logged["train/centroid_shift"] > 0  # the centres' move is logged from the first K-means step on
    assert "train/centroid_reseeds" in logged
    out["loss"].backward()  # with seeded centres the loss reaches the encoder through p' and S
    assert not torch.equal(module.model.heads.centroids, first)
    assert sum(p.grad.abs().sum() for p in module.model.encoder.parameters() if p.grad is not None) > 0
    assert "heads.centroids" in "".join(module.model.state_dict())  # checkpoints and exact resume carry them


def test_a_centroid_momentum_outside_0_1_is_refused_by_name():
    from omegaconf import OmegaConf

    from misseg.lit.build import compose_model
    from misseg.runs.errors import ConfigError
    from misseg.runs.validation import check_model_parts

    check_model_parts(OmegaConf.create(compose_model("mi", ["model/heads=centroids", "heads.momentum=0.0"])))
    refusals = {
        "heads.momentum=1.0": r"model.heads.momentum=1.0: must be a number in \[0, 1\)",
        "heads.reseed_after=0": r"model.heads.reseed_after=0: must be an integer >= 1",
        "heads.overcluster=0": r"model.heads.overcluster=0: must be an integer >= 1",
        "heads.merge=ward": r"model.heads.merge='ward': use one of coassignment, centres",
        "heads.merge_momentum=1": r"model.heads.merge_momentum=1.0: must be a number in \[0, 1\) or null",
    }
    for override, message in refusals.items():
        bad = OmegaConf.create(compose_model("mi", ["model/heads=centroids", override]))
        with pytest.raises(ConfigError, match=message):
            check_model_parts(bad)


def test_with_prototypes_the_bound_cannot_be_met_without_the_segmentation():
    """With p' uniform, S_ij(x) = mean_k H_k is the same for every image: a positive pair and a negative pair score
    the same, so the bound is at most -2 log 2. Image-level F_k can carry a code of their image and beat that
    without any segmentation (what the thesis's heads do on the frozen network: experiments/scale section 12)."""
    from misseg.diagnostics.shortcut import assignment_ablation

    torch.manual_seed(0)
    module = prototype_module(K=2)
    _, H = module.model(torch.randn(6, 3, 16, 16))
    g = torch.randn(6, 8)  # an image-level component of L
    L = g[:, :, None, None] + 0.3 * torch.randn(6, 8, 4, 4)
    out = assignment_ablation(L, H, module.model.tau)
    assert out["uniform"] <= -2 * torch.log(torch.tensor(2.0)).item() + 1e-5
    image_code = H + g[:, None, :]  # every H_k of image b shifted by b's code
    assert assignment_ablation(L, image_code, module.model.tau)["uniform"] > out["uniform"] + 0.3
