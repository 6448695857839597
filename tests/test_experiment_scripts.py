"""The analysis scripts of experiments/ that compute numbers (not just tables) are tested like library code."""

import importlib.util
import math
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

from misseg.metrics.matching import confusion_matrix


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / "small_real" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FixedPredictions:
    def __init__(self, classes: torch.Tensor) -> None:
        self.classes, self.at = classes, 0

    def predict(self, x: torch.Tensor):
        out = self.classes[self.at : self.at + x.shape[0]]
        self.at += x.shape[0]
        return out, None, None


def test_per_image_confusions_sum_to_the_whole_set_matrix_and_oracle_beats_shared_mapping():
    consistency = load_script("consistency")
    g = torch.Generator().manual_seed(0)
    K, C, N = 3, 3, 5
    masks = torch.randint(0, C, (N, 6, 7), generator=g)
    masks[0, :2] = 255
    # every image is segmented perfectly but with its own permutation of the clusters
    perms = [torch.randperm(K, generator=g) for _ in range(N)]
    classes = torch.stack([perms[i][masks[i].clamp_max(C - 1)] for i in range(N)])
    loader = [{"image": torch.zeros(n, 3, 6, 7), "mask": m} for n, m in ((2, masks[:2]), (3, masks[2:]))]
    conf = consistency.per_image_confusions(FixedPredictions(classes), loader, K, C)
    assert conf.shape == (N, K, C)
    for i in range(N):
        assert np.array_equal(conf[i], confusion_matrix(classes[i], masks[i], K, C).numpy())
    oracle = consistency.mean_miou(conf, [consistency.hungarian_mapping(c) for c in conf])
    shared = consistency.mean_miou(conf, [consistency.hungarian_mapping(conf.sum(0))] * N)
    assert oracle == 1.0 and shared < 1.0


def load_scale_script(name: str):
    """The script as a module; its folder on sys.path while it loads, for its sibling imports (_cli, oracle)."""
    folder = str(REPO / "experiments" / "scale")
    spec = importlib.util.spec_from_file_location(name, f"{folder}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def test_oracle_class_fractions_are_the_labelled_shares_of_each_patch():
    oracle = load_scale_script("oracle")
    mask = torch.tensor([[[0, 0, 1, 1], [0, 255, 1, 1], [1, 1, 255, 255], [0, 1, 255, 255]]])
    shares, valid = oracle.class_fractions(mask, 2, (2, 2))
    # patch (0, 0): three labelled pixels, all class 0; patch (1, 0): 1 of 4 class 0; patch (1, 1): nothing labelled
    assert torch.allclose(shares[0, :, 0, 0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(shares[0, :, 0, 1], torch.tensor([0.0, 1.0]))
    assert torch.allclose(shares[0, :, 1, 0], torch.tensor([0.25, 0.75]))
    assert valid[0].tolist() == [[True, True], [True, False]]


def test_centre_rings_split_the_crop_into_equal_areas_around_its_centre():
    rings = load_scale_script("position").centre_rings(8, 8, 2)[0]
    assert rings.shape == (8, 8) and rings.flatten().bincount().tolist() == [32, 32]
    assert rings[3:5, 3:5].eq(0).all() and rings[0, 0] == 1 and rings[7, 7] == 1
    assert torch.equal(rings, rings.flip(0)) and torch.equal(rings, rings.flip(1))  # flips leave it unchanged


def test_edge_density_counts_neighbouring_pairs_with_different_labels():
    agreement = load_scale_script("agreement")
    labels = torch.tensor([[[0, 0, 1], [0, 0, 1]]])  # 4 horizontal pairs (2 differ) + 3 vertical pairs (none)
    assert agreement.edge_density(labels) == pytest.approx(2 / 7)
    labels[0, 0, 0] = -1  # an ignored pixel leaves its two pairs out
    assert agreement.edge_density(labels) == pytest.approx(2 / 5)


def test_image_purity_is_one_for_labels_that_cover_whole_images():
    agreement = load_scale_script("agreement")
    whole = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]]])  # each image one label, the set balanced
    assert agreement.image_purity(whole) == 1.0
    halves = torch.tensor([[[0, 1], [0, 1]], [[0, 0], [0, 1]]])
    assert agreement.image_purity(halves) == pytest.approx((2 / 4 + 3 / 4) / 2)
    halves[1, 1, 1] = -1  # ignored pixels are not counted; an image with none valid is left out
    assert agreement.image_purity(halves) == pytest.approx((2 / 4 + 3 / 3) / 2)
    assert agreement.image_purity(torch.cat([halves, torch.full((1, 2, 2), -1)])) == pytest.approx((2 / 4 + 1) / 2)


def test_image_fill_gives_every_pixel_its_images_majority_label_and_scores_whole_image_labellings():
    image_fill = load_scale_script("image_fill")
    labels = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [-1, 1]], [[-1, -1], [-1, -1]]])
    filled = image_fill.fill_images(labels)  # ignored pixels do not vote; an image with none valid gets 0
    assert filled.tolist() == [[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]]
    masks = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [255, 1]]], dtype=torch.uint8)
    # the classes filled per image: image 0 all class 1 (3 of 4 right), image 1 all class 0 (2 of 3 right)
    # IoU class 0: 2 / (2 + 1 + 1) = 0.5, class 1: 3 / (4 + 1) = 0.6 (the ignored pixel predicts nothing)
    gt = masks.long().clone()
    gt[gt == 255] = -1
    assert image_fill.miou(image_fill.fill_images(gt), masks, 2, 2) == pytest.approx((0.5 + 0.6) / 2)
    swapped = 1 - image_fill.fill_images(gt)  # Hungarian matching: cluster names do not matter
    assert image_fill.miou(swapped, masks, 2, 2) == pytest.approx((0.5 + 0.6) / 2)


def test_probe_source_splits_the_pixels_by_the_clusters_matched_classes_and_fits_the_evaluate_probe():
    probe_source = load_scale_script("probe_source")
    masks = torch.tensor([[[0, 0], [1, 255]], [[1, 1], [0, 0]]], dtype=torch.uint8)
    gt = masks.long().masked_fill(masks == 255, -1)
    swapped = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 1]]])  # cluster 1 is class 0 (3 of its 3 pixels)
    right = probe_source.matched(swapped, masks, 2, 2) == gt  # the ignored pixel is never right
    assert right.tolist() == [[[True, True], [True, False]], [[True, True], [False, True]]]
    over = torch.tensor([[[0, 0], [2, 2]], [[1, 2], [3, 3]]])  # K = 4 > 2 classes: each cluster to its majority
    assert probe_source.matched(over, masks, 4, 2).tolist() == [[[0, 0], [1, 1]], [[1, 1], [0, 0]]]
    # accuracy counts the labelled pixels of the region only; an empty region is nan, not 0
    pred = torch.tensor([[[0, 1], [1, 1]], [[1, 1], [1, 0]]])
    assert probe_source.region_accuracy(pred, gt, right) == pytest.approx(5 / 6)
    assert probe_source.region_accuracy(pred, gt, ~right) == 0.0  # one labelled wrong pixel; the 255 one left out
    assert np.isnan(probe_source.region_accuracy(pred, gt, torch.zeros_like(right)))
    # the probe: targets that the first channel of L holds are read back on unseen images, others are not
    g = torch.Generator().manual_seed(0)
    L = torch.randn(16, 4, 4, 4, generator=g)
    targets = (L[:, 0] > 0).to(torch.uint8)  # the grid's own resolution: no upsampling in between
    pred = probe_source.probe_predictions(L[:8], targets[:8], L[8:], (4, 4), 2, seed=0)
    assert (pred == targets[8:]).float().mean() > 0.95
    noise = torch.randint(0, 2, (16, 4, 4), generator=g, dtype=torch.uint8)
    pred = probe_source.probe_predictions(L[:8], noise[:8], L[8:], (4, 4), 2, seed=0)
    assert (pred == noise[8:]).float().mean() < 0.75


def test_pool_bounds_score_a_position_map_on_the_own_image_pool_only():
    """pools.py's columns on a network output whose clusters are the same two bands in every image: against the image's
    own positions the bands are information, against the same position of other images they are none."""
    pools = load_scale_script("pools")
    B, P, U, V = 4, 2, 4, 4
    L = torch.zeros(B, P, U, V)
    L[:, 0, : U // 2], L[:, 0, U // 2 :] = 3.0, -3.0  # upper half one side of the first axis, lower half the other
    H = torch.tensor([[3.0, 0.0], [-3.0, 0.0]]).expand(B, 2, P)  # two prototypes, the same in every image
    r = pools.pool_bounds(L, H, tau=1.0)
    assert r["own_image"] > r["local"] + 4
    assert r["local_shuffled"] > r["local"] + 2  # a random other position is the other band half the time
    assert min(r["own_image"], r["local"]) < r["mixed"] < max(r["own_image"], r["local"])
    assert r["own_image_balanced"] == pytest.approx(r["own_image"], abs=1e-4)  # equal bands: the weights are all 1


def test_pools_scores_a_run_with_centred_heads_against_its_centred_heads():
    """pools.py reads the bound as the run trained it: model.objective.centre_heads centres the H_k over k first."""
    from types import SimpleNamespace

    from misseg.objectives.mi import MIObjective, centre

    pools = load_scale_script("pools")
    torch.manual_seed(0)
    L, H = torch.randn(4, 8, 3, 3), torch.randn(4, 2, 8) + 2.0  # a mean over k that centring removes
    for centred in (False, True):
        objective = MIObjective(tau=0.5, centre_heads=centred)  # the dot critic: critic_ab() is None
        run = SimpleNamespace(objective=objective, model=SimpleNamespace(tau=0.5))
        run.eval = lambda run=run: run
        pools.load_module = lambda ckpt, run=run: run
        pools.batch_means = lambda module, data, keys, per_batch: per_batch(L, H)
        expected = pools.pool_bounds(L, centre(H) if centred else H, 0.5)
        assert pools.score("ckpt", None)["own_image"] == pytest.approx(expected["own_image"])
    assert expected["own_image"] != pytest.approx(pools.pool_bounds(L, H, 0.5)["own_image"])


def test_checkpoint_table_prints_k_as_an_int_and_scores_to_three_decimals(capsys):
    checkpoint_table = load_scale_script("_cli").checkpoint_table
    checkpoint_table(None, ["a.ckpt"], ("K", "miou"), lambda c, data: {"K": 2, "miou": 0.41234})
    assert capsys.readouterr().out.splitlines() == [
        "| checkpoint | K | miou |",
        "|---|---|---|",
        "| a.ckpt | 2 | 0.412 |",
    ]


def test_checkpoint_table_prints_no_header_before_a_first_checkpoint_it_refuses(capsys):
    from misseg.runs.errors import ConfigError

    def refuse(c, data):
        raise ConfigError(f"{c}: not a centroid-heads run")

    with pytest.raises(ConfigError):
        load_scale_script("_cli").checkpoint_table(None, ["a.ckpt"], ("K",), refuse)
    assert capsys.readouterr().out == ""


def test_shared_score_finds_the_bounds_gradient_along_the_heads_mean_and_centring_removes_it():
    """shared_score.py on L and H that both carry one vector m (as centroid heads carry the mean of L): the shared
    score is about a |m|^2, the joint term saturates, and the bound's gradient on L lies along mean_k H_k; with the
    H_k centred the marginal term is back near its range and the gradient is spread over the other directions."""
    script = load_scale_script("shared_score")
    torch.manual_seed(0)
    B, K, P, U, V = 4, 3, 16, 4, 4
    m = torch.randn(P)
    m = 4 * m / m.norm()
    L, H = torch.randn(B, P, U, V) + m[None, :, None, None], (torch.randn(K, P) + m).expand(B, K, P)
    for negatives in ("heads", "own_image", "local"):
        r = script.shared_scores(L, H, 0.5, negatives, (0.5, 0.0))
        assert r["shared"] == pytest.approx(0.5 * float((L * H.mean(1)[:, :, None, None]).sum(1).mean()))
        assert r["joint"] > -0.05 and r["marginal"] > 8
        assert r["grad along mean"] > 0.7 and r["grad along mean_centred"] < 0.1
        assert r["marginal_centred"] < 2
    r = script.shared_scores(L - m[None, :, None, None], H - m, 0.5, "heads", (0.5, 0.0))  # nothing shared
    assert abs(r["shared"]) < 1 and r["marginal"] < 2


def test_position_purity_is_one_for_the_same_map_in_every_image():
    agreement = load_scale_script("agreement")
    same = torch.tensor([[[0, 1], [2, 3]]]).expand(3, 2, 2)  # one map for every image, whatever its labels
    assert agreement.position_purity(same) == 1.0
    whole = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]]])  # each image one label: no position prefers one
    assert agreement.position_purity(whole) == pytest.approx(0.5)
    mixed = torch.tensor([[[0, 1], [0, 1]], [[0, 0], [1, 1]], [[0, 1], [1, 1]]])
    # positions (0,0): 0,0,0 -> 3; (0,1): 1,0,1 -> 2; (1,0): 0,1,1 -> 2; (1,1): 1,1,1 -> 3
    assert agreement.position_purity(mixed) == pytest.approx(10 / 12)
    mixed[1, 0, 1] = -1  # ignored pixels are not counted: (0,1) becomes 1,1 -> 2 of 2
    assert agreement.position_purity(mixed) == pytest.approx(10 / 11)


def test_ceiling_body_kmeans_groups_what_the_frozen_body_sees_alike():
    """ceiling.py's reference row for the correspondences: K-means on the checkpoint's body map (not on L). Two kinds
    of images (left half dark or bright, the rest the same): every pixel of the left halves falls in its kind's
    cluster, so the clusters follow the body's features, and the map is at the images' size with K labels."""
    from conftest import tiny_module

    ceiling = load_scale_script("ceiling")
    torch.manual_seed(0)
    module = tiny_module("mi", "K=2", "model/encoder=timm", "d=8").eval()
    x = torch.zeros(6, 3, 32, 32)
    x[:3, :, :, :16] = -2.0
    x[3:, :, :, :16] = 2.0
    labels = ceiling.body_kmeans(module, x, 2)
    assert labels.shape == (6, 32, 32) and set(labels.unique().tolist()) <= {0, 1}
    left = labels[:, 4:28, 4:12]  # away from the border the body's receptive field mixes
    dark, bright = left[:3].unique(), left[3:].unique()
    assert len(dark) == 1 and len(bright) == 1 and dark.item() != bright.item()


def test_ceiling_set_partners_pair_each_image_with_its_nearest_over_the_whole_set():
    """ceiling.py --partners set: each image's partner is the closest other image of the whole set in the body's
    mean-pooled features (STEGO's nearest neighbour), not of a batch. Three kinds of images, each twice (a little
    noise apart), placed three apart: each image's partner is its twin."""
    from conftest import tiny_module

    ceiling = load_scale_script("ceiling")
    torch.manual_seed(0)
    module = tiny_module("mi", "K=2", "model/encoder=timm", "d=8").eval()
    kinds = torch.zeros(3, 3, 32, 32)
    kinds[0, :, :, :16] = 2.0  # left half bright
    kinds[1, :, :16] = -2.0  # top half dark
    kinds[2] = 1.5  # bright everywhere
    x = torch.cat([kinds, kinds]) + 0.01 * torch.randn(6, 3, 32, 32)
    assert ceiling.set_partners(ceiling.body_maps(module, x)).tolist() == [3, 4, 5, 0, 1, 2]


def test_stage_drift_measures_each_stage_relative_to_its_pretrained_weights_and_skips_running_statistics():
    """stage_drift.py (section 39's "the trained stages move 1.3%"): ||w - w0|| / ||w0|| per stage, over learned
    tensors only; the last column takes the stages that moved together."""
    stage_drift = load_scale_script("stage_drift")
    ones = torch.ones(4)
    initial = {
        "conv_stem.weight": ones,
        "blocks.5.0.conv_pw.weight": ones,
        "blocks.5.0.bn1.running_mean": ones,
        "blocks.6.0.conv_pw.weight": 2 * ones,
    }
    body = {
        "conv_stem.weight": ones,  # frozen: 0
        "blocks.5.0.conv_pw.weight": 1.1 * ones,  # 10%
        "blocks.5.0.bn1.running_mean": 5 * ones,  # statistics: not counted
        "blocks.6.0.conv_pw.weight": 2 * ones + torch.tensor([0.6, 0.0, 0.0, 0.0]),  # 0.6 / 4 = 15%
        "head.weight": ones,  # not in the pretrained weights: not counted
    }
    drift = stage_drift.stage_drift(body, initial)
    assert list(drift) == ["stem", "blocks.5", "blocks.6", "moved stages"]
    assert drift["stem"] == 0 and drift["blocks.5"] == pytest.approx(0.1) and drift["blocks.6"] == pytest.approx(0.15)
    assert drift["moved stages"] == pytest.approx(((0.04 + 0.36) / (4 + 16)) ** 0.5)
    assert stage_drift.stage_of("blocks.12.0.conv.weight") == "blocks.12" and stage_drift.stage_of("bn1.bias") == "stem"


def test_centre_split_tells_a_merge_that_loses_the_classes_from_centres_that_do():
    """centre_split.py with four centres e0..e3 (K = 2, overcluster = 2) and an L that is 10 e_i + 5 e_j on the pixels
    whose first channel is i (j: i's partner in its class): class 0 holds the pixels of e0 and e1, class 1 those of e2
    and e3. Merging {e0, e1}, {e2, e3} scores 1 and so does the labels' majority merge; merging {e0, e2}, {e1, e3}
    loses the classes (the merged mIoU falls) while the centres' majority ceiling stays 1, and the co-assignment
    merge read on the set (each pixel's p' holds its partner a little) finds the classes either way."""
    from types import SimpleNamespace

    from torch import nn

    from misseg.models.centroids import CentroidHeads
    from misseg.models.segmenter import MISegmenter

    split = load_scale_script("centre_split")

    class Encoder(nn.Module):  # L = 10 e_i + 5 e_j where the first channel is i, j = 1, 0, 3, 2
        d = 1

        def forward(self, x):
            i = x[:, 0].long()
            e = torch.nn.functional.one_hot(i, 4) * 10 + torch.nn.functional.one_hot(i ^ 1, 4) * 5
            return e.permute(0, 3, 1, 2).float()

    heads = CentroidHeads(K=2, P=4, overcluster=2)
    heads.centroids.copy_(torch.eye(4))
    model = MISegmenter(nn.Identity(), Encoder(), heads)
    module = SimpleNamespace(model=model, eval=lambda: module)
    split.load_module = lambda ckpt: module
    index = torch.arange(4).repeat_interleave(4).reshape(4, 4)  # four rows, one per centre
    x = index[None, None].expand(2, 3, 4, 4).float()
    masks = (index >= 2).long()[None].expand(2, 4, 4)
    split.eval_images = lambda data: (x, masks, masks)
    data = SimpleNamespace(num_classes=2)
    for groups, merged, precision in (([0, 0, 1, 1], 1.0, 1.0), ([0, 1, 0, 1], 1 / 3, 0.0)):
        heads.groups.copy_(torch.tensor(groups))
        row = split.score("ckpt", data)
        assert row["K"] == 2 and row["centres"] == 4 and row["centres per class"] == "2 2"
        assert row["merged mIoU"] == pytest.approx(merged) and row["centres, majority mIoU"] == pytest.approx(1.0)
        assert row["merge precision"] == pytest.approx(precision)  # every joined pair within a class, or none
        assert row["balance"] == pytest.approx(1.0)
        assert row["co-assignment here mIoU"] == pytest.approx(1.0)  # read from p', whatever the checkpoint merged
    # pixel-weighted: a joined pair of a large and a small centre counts by the product of their pixels
    counts = torch.tensor([[9.0, 0], [0, 1], [3, 0], [3, 0]])  # majority classes 0, 1, 0, 0
    assert split.merge_precision(counts, torch.tensor([0, 0, 1, 1])) == pytest.approx(9 / (9 + 9))
    assert math.isnan(split.merge_precision(counts, torch.arange(4)))  # nothing joined
    module.model = SimpleNamespace(heads=CentroidHeads(K=2, P=4))  # K centres: nothing merged
    with pytest.raises(split.ConfigError, match="ckpt: not an over-clustered centroid run"):
        split.score("ckpt", data)


def test_merge_signals_joins_the_centres_that_one_content_takes_in_two_images():
    """merge_signals.py's correspondence statistic on two images of two positions each whose frozen-body features are
    u (top) and v (bottom) in both: image 0 gives u to centre 0 and v to centre 2, image 1 gives u to centre 1 and v
    to centre 3. No position holds two centres, so the co-assignment links none; the correspondences (each position
    matched to the same feature in the other image) link 0 with 1 and 2 with 3, and its merge finds those groups."""
    from misseg.models.centroids import coassignment_groups

    signals = load_scale_script("merge_signals")
    p = torch.zeros(2, 4, 2, 1)
    p[0, 0, 0], p[0, 2, 1], p[1, 1, 0], p[1, 3, 1] = 1, 1, 1, 1
    body = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T[None, :, :, None].expand(2, 2, 2, 1)  # (N, Q, U, V): u, v
    B = signals.correspondence_joint_counts(p, body)
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0, 1] = expected[1, 0] = expected[2, 3] = expected[3, 2] = 0.25
    assert torch.allclose(B, expected) and B.sum() == pytest.approx(1.0)
    assert coassignment_groups(B, 2).tolist() == [0, 0, 1, 1]
    assert torch.allclose(signals.correspondence_joint_counts(p, body, batch=16), expected)  # one batch of both
    flat = p.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.count_nonzero((flat.T @ flat).fill_diagonal_(0)) == 0  # the co-assignment: no pair at all


def test_kmeans_merge_keeps_a_class_whole_that_k_means_with_k_centres_cuts():
    """kmeans_merge.py on an L where class 0 lies at three norms of one direction (near, mid, far: 10, 20, 30 u) and
    classes 1 and 2 at 3 v and 3 w: K-means with K = 3 cuts class 0 (its modes are farther apart than classes 1 and
    2) and merges 1 with 2; six centres merged by average linkage on their directions give the three classes."""
    from types import SimpleNamespace

    from torch import nn

    merge = load_scale_script("kmeans_merge")
    torch.manual_seed(0)
    modes = torch.tensor([[10.0, 0, 0], [20, 0, 0], [30, 0, 0], [0, 3, 0], [0, 0, 3]])
    index = torch.arange(5).repeat_interleave(2)[None].expand(10, 10)  # two columns per mode
    masks = torch.tensor([0, 0, 0, 1, 2])[index][None].expand(2, 10, 10)
    L = modes[index].permute(2, 0, 1)[None] + 0.05 * torch.randn(2, 3, 10, 10)
    net = SimpleNamespace(K=3, inputs=nn.Identity(), encoder=lambda x: L[: len(x)])
    module = SimpleNamespace(model=net, eval=lambda: module)
    merge.load_module = lambda ckpt: module
    merge.eval_images = lambda data: (torch.zeros(2, 3, 10, 10), masks, masks)
    row = merge.score("ckpt", SimpleNamespace(num_classes=3), 2)
    assert row["K-means K"] < 0.5 and row["K-means m K merged"] > 0.95
    assert row["centres per class"] == "4 1 1" and row["balance merged"] < row["balance K"]


def test_reseeds_counts_the_classes_a_batch_leaves_empty_at_its_valid_positions_only():
    """reseeds.py with a network whose L is e0 on image 0 and e1 on image 1, and H = (e0, e1, -e0 - e1): class 2 is
    nobody's nearest centre, so the batch leaves it empty (one re-seed); with image 1's pixels all ignored (COCO-Stuff
    things, as in training) class 1 is empty too. The image shares are those of the classes each image chooses."""
    from types import SimpleNamespace

    reseeds = load_scale_script("reseeds")
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    H = torch.stack([e0, e1, -e0 - e1])

    class Network:  # centroid heads' network: x[:, 0, 0, 0] says which image it is
        heads = SimpleNamespace(kmeans_step=lambda L, valid: None)

        def __call__(self, x):
            L = torch.stack([e1 if i > 0.5 else e0 for i in x[:, 0, 0, 0]])[:, :, None, None].expand(-1, 2, 2, 2)
            return L, H.expand(x.shape[0], 3, 2)

    module = SimpleNamespace(model=Network(), valid_pixels=lambda batch: batch["mask"] != 255)
    module.eval = lambda: module
    reseeds.load_module = lambda ckpt: module
    images = [torch.full((3, 4, 4), float(i)) for i in (0, 1)]
    for ignored, empty, shares in ((False, 1, "0.50 0.50 0.00"), (True, 2, "0.50 0.00 0.00")):
        masks = [torch.zeros(4, 4, dtype=torch.long), torch.full((4, 4), 255 if ignored else 0)]
        data = SimpleNamespace(val_set=[{"image": x, "mask": m} for x, m in zip(images, masks, strict=True)])
        row = reseeds.score("ckpt", data)
        assert row == {"K": 3, "empty per batch": empty, "often empty": empty, "image share per class": shares}
    module.model = SimpleNamespace(heads=object())  # the thesis's heads: no K-means step, nothing re-seeds
    with pytest.raises(reseeds.ConfigError, match="ckpt: not a centroid-heads run"):
        reseeds.score("ckpt", data)


def test_class_split_reads_a_class_cut_over_equal_clusters():
    class_split = load_scale_script("class_split")
    # rows = clusters, columns = classes: class 0 (80% of the pixels) cut in two equal clusters, class 1 kept whole
    confusion = np.array([[40, 0], [40, 0], [0, 20]])
    r = class_split.class_split(confusion)
    assert r["top_share"].tolist() == [0.5, 1.0] and r["class_share"].tolist() == pytest.approx([0.8, 0.2])
    assert r["largest"] == pytest.approx(0.4)
    assert r["balance"] == pytest.approx(-(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)) / np.log(3))
    assert class_split.balance(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert class_split.balance(np.array([1.0, 0.0])) == pytest.approx(0.0)  # one cluster holds everything


def test_step_curve_averages_each_step_over_the_seeds_and_skips_the_other_evaluations(tmp_path, capsys):
    import json

    def write(seed: int, step: str, probe: dict, name: str = "mi_x") -> None:
        d = tmp_path / f"seed{seed}" / name / "diag" / step / "coco_stuff15"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"miou": 0.5, "probe": {k: {"miou": v} for k, v in probe.items()}}))

    for seed, (c, k, lin) in enumerate([(0.20, 0.18, 0.22), (0.24, 0.20, 0.26)]):
        write(seed, "step00450", {"unsupervised": c, "kmeans": k, "linear": lin})
        write(seed, "initial", {"unsupervised": 0.01, "linear": 0.21})
        write(seed, "random", {"unsupervised": 0.9, "kmeans": 0.9, "linear": 0.9})  # not a step: left out
        write(seed, "step00450_crf", {})  # crf=true: no probes
        write(seed, "step00450_all", {})  # clusters on every image: no probes
    step_curve = load_scale_script("step_curve")
    data = step_curve.curves(tmp_path)
    assert list(data) == [("mi_x", "coco_stuff15")]
    assert sorted(data["mi_x", "coco_stuff15"]) == [0, 450]
    at450 = data["mi_x", "coco_stuff15"][450]
    assert at450["clusters"] == pytest.approx([0.20, 0.24]) and at450["linear"] == pytest.approx([0.22, 0.26])
    lines = step_curve.table(data).splitlines()
    assert lines[2] == "| mi_x | coco_stuff15 | 0 | 2 | 0.010 ± 0.000 | - | 0.210 ± 0.000 |"
    assert lines[3] == "| mi_x | coco_stuff15 | 450 | 2 | 0.220 ± 0.028 | 0.190 ± 0.014 | 0.240 ± 0.028 |"
    step_curve.figure(data, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
    # a second run beside it: every run by default (sorted), --names keeps the ones named in their order
    write(0, "step00450", {"unsupervised": 0.1, "kmeans": 0.1, "linear": 0.1}, name="iic_y")
    assert list(step_curve.curves(tmp_path)) == [("iic_y", "coco_stuff15"), ("mi_x", "coco_stuff15")]
    assert list(step_curve.curves(tmp_path, ["mi_x", "iic_y"])) == [("mi_x", "coco_stuff15"), ("iic_y", "coco_stuff15")]
    assert list(step_curve.curves(tmp_path, ["mi_x"])) == [("mi_x", "coco_stuff15")]
    step_curve.figure(step_curve.curves(tmp_path, ["mi_x", "iic_y"]), tmp_path / "two.png")
    assert (tmp_path / "two.png").stat().st_size > 0
    with pytest.raises(SystemExit) as exit_info:  # a name with no step evaluations: one line, exit 2
        step_curve.main([str(tmp_path), "--names", "mi_x,iic_z"])
    assert exit_info.value.code == 2 and "--names: no step evaluations of iic_z" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # every name missing: still the names, not "nothing under it"
        step_curve.main([str(tmp_path), "--names", "mi_q,iic_z"])
    assert exit_info.value.code == 2 and "--names: no step evaluations of mi_q, iic_z" in capsys.readouterr().err
