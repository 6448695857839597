import math

import pytest
import torch
import torch.nn.functional as F

from misseg.objectives.mi import (
    MIObjective,
    balanced_negative_weights,
    bound_terms,
    correspondence_joint,
    correspondences,
    jsd_bound,
    jsd_mixed,
    jsd_mixed_balanced,
    jsd_own_image,
    jsd_own_image_balanced,
    jsd_uniform_heads,
    jsd_with_negatives,
    mi_objective,
    pool_valid,
    pseudo_label_loss,
    scores,
    soft_assignment,
    soft_global,
    straight_through,
)
from misseg.objectives.views import overlap, roll


def reference_loss(L, H, tau, valid=None):
    """Obviously-correct loops over images, positions and classes (slow; tests only)."""
    B, P, U, V = L.shape
    K = H.shape[1]
    if valid is None:
        valid = torch.ones(B, U, V, dtype=torch.bool)
    S = torch.zeros(B, P, U, V)
    for b in range(B):
        for i in range(U):
            for j in range(V):
                t = torch.stack([L[b, :, i, j] @ H[b, k] for k in range(K)])
                p = [math.exp(tau * t[k]) for k in range(K)]
                z = sum(p)
                S[b, :, i, j] = sum((p[k] / z) * H[b, k] for k in range(K))
    pos, n_pos, neg, n_neg = 0.0, 0, 0.0, 0
    for b in range(B):
        for i in range(U):
            for j in range(V):
                if not valid[b, i, j]:
                    continue
                pos += -F.softplus(-(L[b, :, i, j] @ S[b, :, i, j]))
                n_pos += 1
                for c in range(B):
                    if c != b and valid[c, i, j]:
                        neg += F.softplus(L[b, :, i, j] @ S[c, :, i, j])
                        n_neg += 1
    return -(pos / n_pos - neg / n_neg)


@pytest.mark.parametrize("with_mask", [False, True])
def test_loss_matches_slow_reference(with_mask):
    torch.manual_seed(0)
    B, P, U, V, K = 3, 5, 2, 3, 4
    L, H = torch.randn(B, P, U, V), torch.randn(B, K, P)
    valid = torch.rand(B, U, V) > 0.3 if with_mask else None
    got = mi_objective(L, H, tau=0.7, valid=valid)["loss"]
    assert torch.allclose(got, reference_loss(L, H, 0.7, valid), atol=1e-5)


def test_eq_4_8_soft_assignment_is_tau_scaled_softmax_over_k():
    torch.manual_seed(1)
    L, H = torch.randn(2, 4, 3, 3), torch.randn(2, 5, 4)
    p = soft_assignment(L, H, tau=0.3)
    b, i, j = 1, 2, 0
    logits = torch.stack([0.3 * (L[b, :, i, j] @ H[b, k]) for k in range(5)])
    assert torch.allclose(p[b, :, i, j], torch.softmax(logits, 0), atol=1e-6)
    assert torch.allclose(p.sum(1), torch.ones(2, 3, 3))


def test_eq_4_9_soft_global_feature_is_p_weighted_sum_of_H():
    torch.manual_seed(2)
    p = torch.softmax(torch.randn(2, 3, 2, 2), 1)
    H = torch.randn(2, 3, 6)
    S = soft_global(p, H)
    assert torch.allclose(S[1, :, 0, 1], sum(p[1, k, 0, 1] * H[1, k] for k in range(3)), atol=1e-6)


def test_eq_4_12_jsd_bound_terms():
    """Positives: same image and position; negatives: same position, other images only."""
    L = torch.zeros(2, 1, 1, 1)
    L[0, 0, 0, 0], L[1, 0, 0, 0] = 1.0, 2.0
    S = torch.zeros(2, 1, 1, 1)
    S[0, 0, 0, 0], S[1, 0, 0, 0] = 3.0, -1.0
    out = jsd_bound(L, S)
    joint = (-F.softplus(torch.tensor(-3.0)) - F.softplus(torch.tensor(2.0))) / 2
    marginal = (F.softplus(torch.tensor(-1.0)) + F.softplus(torch.tensor(6.0))) / 2
    assert torch.allclose(out["joint"], joint)
    assert torch.allclose(out["marginal"], marginal)
    assert torch.allclose(out["mi"], joint - marginal)


def test_large_tau_gives_hard_assignment():
    torch.manual_seed(3)
    L, H = torch.randn(2, 8, 4, 4), torch.randn(2, 3, 8)
    p = soft_assignment(L, H, tau=1e4)
    hard = F.one_hot(torch.einsum("bpuv,bkp->bkuv", L, H).argmax(1), 3).permute(0, 3, 1, 2).float()
    assert torch.allclose(p, hard, atol=1e-4)
    S = soft_global(p, H)
    idx = hard.argmax(1)
    assert torch.allclose(S[0, :, 1, 2], H[0, idx[0, 1, 2]], atol=1e-3)


def test_invalid_positions_get_zero_gradient():
    torch.manual_seed(4)
    L = torch.randn(3, 6, 4, 4, requires_grad=True)
    H = torch.randn(3, 5, 6, requires_grad=True)
    valid = torch.ones(3, 4, 4, dtype=torch.bool)
    valid[0, :2] = False
    valid[2, :, 3] = False
    mi_objective(L, H, tau=0.5, valid=valid)["loss"].backward()
    g = L.grad.abs().sum(1)
    assert torch.all(g[~valid] == 0)
    assert torch.all(g[valid] > 0)


def test_detach_assignment_changes_gradient_not_value():
    torch.manual_seed(5)
    L, H = torch.randn(2, 4, 3, 3), torch.randn(2, 3, 4)
    grads, values = [], []
    for detach in (False, True):
        Lr = L.clone().requires_grad_()
        out = mi_objective(Lr, H, tau=1.0, detach_assignment=detach)
        out["loss"].backward()
        grads.append(Lr.grad)
        values.append(out["loss"].detach())
    assert torch.allclose(values[0], values[1])
    assert not torch.allclose(grads[0], grads[1])


def test_hard_assignment_builds_S_from_the_argmax_and_keeps_the_soft_gradient():
    """The lever's forward pass: S_ij is the H_k of the predicted cluster, so p''s soft values carry nothing to the
    critic; its backward pass: p''s own gradient (straight-through), so the heads and L still train."""
    torch.manual_seed(6)
    L, H = torch.randn(2, 4, 3, 3), torch.randn(2, 3, 4)
    out = mi_objective(L, H, tau=1.0, hard_assignment=True)
    k = soft_assignment(L, H, 1.0).argmax(1)  # (B, U, V)
    expected = H[torch.arange(2)[:, None, None], k].permute(0, 3, 1, 2)  # H_{b, k_bij} -> (B, P, U, V)
    assert torch.allclose(out["S"], expected, atol=1e-6)
    assert not torch.allclose(out["S"], mi_objective(L, H, tau=1.0)["S"])

    p = torch.softmax(torch.randn(2, 3, 4, 4), 1).requires_grad_()
    w = torch.randn(2, 3, 4, 4)
    (straight_through(p) * w).sum().backward()
    assert torch.allclose(p.grad, w)  # d/dp' of the one-hot is taken as the identity

    Lr, Hr = L.clone().requires_grad_(), H.clone().requires_grad_()
    for views in (1, 2):
        objective = MIObjective(tau=1.0, hard_assignment=True, views=views)
        second = (Lr.flip(-1), Hr, torch.ones(2, dtype=torch.bool)) if views == 2 else None
        objective(Lr, Hr, second=second)["loss"].backward()
    assert torch.isfinite(Hr.grad).all() and Hr.grad.abs().sum() > 0


def test_pool_valid_majority_rule():
    valid = torch.zeros(1, 8, 8, dtype=torch.bool)
    valid[0, :4, :4] = True
    valid[0, 4:, :2] = True  # exactly half of the bottom-left patch: counts (>= 0.5)
    pooled = pool_valid(valid, (2, 2))
    assert pooled.tolist() == [[[True, False], [True, False]]]


def test_extreme_scores_finite():
    L = torch.full((2, 4, 2, 2), 100.0, requires_grad=True)
    H = torch.full((2, 3, 4), 100.0)
    H[1] *= -1
    out = mi_objective(L, H, tau=1.0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(L.grad).all()


def test_shuffled_negative_positions_pair_other_positions_of_other_images():
    """negative_positions=shuffled: joint unchanged; the marginal equals the loop over (other image, pi(ij))."""
    torch.manual_seed(3)
    B, P, U, V = 3, 4, 2, 3
    L, S = torch.randn(B, P, U, V), torch.randn(B, P, U, V)
    torch.manual_seed(7)
    got = jsd_bound(L, S, negative_positions="shuffled")
    torch.manual_seed(7)
    pi = torch.randperm(U * V)
    assert not torch.equal(pi, torch.arange(U * V))  # the seed draws a real permutation
    Lf, Sf = L.flatten(2), S.flatten(2)
    neg = [
        F.softplus(Lf[b, :, n] @ Sf[c, :, pi[n]]) for b in range(B) for c in range(B) if c != b for n in range(U * V)
    ]
    assert torch.allclose(got["marginal"], torch.stack(neg).mean(), atol=1e-6)
    assert torch.allclose(got["joint"], jsd_bound(L, S)["joint"])


def test_same_position_negatives_penalise_a_labelling_that_every_image_shares():
    """The mechanism behind the lever: when S_ij is the same in every image (a class at the same place in all
    images), same-position negatives are as close as the positives and the bound sits at the floor; shuffled
    positions see that S differs between positions and reward the labelling."""
    U = V = 4
    code = torch.tensor([1.0, -1.0]).repeat_interleave(8).reshape(1, 1, U, V) * torch.tensor([[[[1.0]], [[0.0]]]])
    S = code.expand(6, 2, U, V) * 3  # top half one prototype, bottom half its opposite, in every image
    L = S.clone()
    same = jsd_bound(L, S)
    torch.manual_seed(0)
    shuffled = jsd_bound(L, S, negative_positions="shuffled")
    assert torch.allclose(same["joint"] - same["marginal"], same["mi"])
    assert same["mi"] < -4  # joint ~ 0, marginal = softplus(9): positives and negatives identical
    assert shuffled["mi"] > same["mi"] + 3


def test_own_image_negatives_pair_every_other_position_of_the_same_image():
    """jsd_own_image's terms against a loop: the joint as eq. 4.12's; the marginal over the ordered pairs (ij, i'j')
    of one image with i'j' != ij, both valid; other images never enter."""
    torch.manual_seed(7)
    B, P, U, V = 2, 3, 2, 3
    L, S = torch.randn(B, P, U, V), torch.randn(B, P, U, V)
    valid = torch.rand(B, U, V) > 0.3
    out = jsd_own_image(L, S, valid)
    Lf, Sf, vf = L.flatten(2), S.flatten(2), valid.flatten(1)
    terms = [
        F.softplus(Lf[b, :, i] @ Sf[b, :, j])
        for b in range(B)
        for i in range(U * V)
        for j in range(U * V)
        if i != j and vf[b, i] and vf[b, j]
    ]
    assert torch.allclose(out["marginal"], torch.stack(terms).mean(), atol=1e-6)
    assert torch.allclose(out["joint"], jsd_bound(L, S, valid)["joint"])
    assert torch.allclose(jsd_with_negatives(L, S, valid, "own_image")["mi"], out["mi"])


def test_own_image_negatives_leave_whole_image_labels_nothing():
    """The mechanism behind the lever: a labelling that gives each image one label (the whole-image shortcut of
    experiments/scale section 17) meets eq. 4.12 with other images' negatives, and sits at the floor when the
    negatives come from the image itself; a split inside each image is rewarded there."""
    B, P, U, V = 4, 2, 4, 4
    image_code = torch.tensor([[3.0, 0.0], [-3.0, 0.0]]).repeat(2, 1)  # images 0, 2 one label; 1, 3 the other
    S_whole = image_code[:, :, None, None].expand(B, P, U, V)
    own = jsd_own_image(S_whole, S_whole)
    assert jsd_bound(S_whole, S_whole)["mi"] > own["mi"] + 4  # other images: 2 of each image's 3 negatives differ
    assert own["mi"] < -8  # positives and negatives identical: joint ~ 0, marginal softplus(9)
    split = torch.ones(B, P, U, V)
    split[:, 0, : U // 2], split[:, 0, U // 2 :], split[:, 1] = 3.0, -3.0, 0.0  # upper half one label, lower the other
    assert jsd_own_image(split, split)["mi"] > own["mi"] + 4


@pytest.mark.parametrize("negatives", ["own_image", "own_image_balanced", "mixed_balanced"])
def test_own_image_negatives_train_and_refuse_shuffled_positions(negatives):
    """Each pool with the image's own positions trains with one and two views, and refuses shuffled positions."""
    torch.manual_seed(8)
    L, H = torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
    for views in (1, 2):
        objective = MIObjective(tau=1.0, negatives=negatives, views=views)
        second = (L.flip(-1), H, torch.ones(2, dtype=torch.bool)) if views == 2 else None
        objective(L, H, second=second)["loss"].backward()
    assert torch.isfinite(H.grad).all() and H.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=f"negative_positions=shuffled with model.objective.negatives={negatives}"):
        MIObjective(tau=1.0, negatives=negatives, negative_positions="shuffled")


def test_balanced_negatives_give_each_cluster_of_an_image_the_same_weight():
    """balanced_negative_weights: with a hard p', each cluster an image holds carries the same total weight among its
    negatives, whatever its size; the weights of an image's valid positions sum to their number, invalid ones 0;
    an image split in equal parts keeps the own-image pool as it was."""
    B, K, U, V = 2, 2, 4, 4
    labels = torch.zeros(B, U, V, dtype=torch.long)
    labels[0, 0, :2] = 1  # image 0: 2 positions of cluster 1, 14 of cluster 0
    labels[1, :2] = 1  # image 1: an equal split
    p = F.one_hot(labels, K).permute(0, 3, 1, 2).float()
    valid = torch.ones(B, U, V, dtype=torch.bool)
    valid[0, 3, 3] = False
    w = balanced_negative_weights(p, valid)
    assert w[0, 3, 3] == 0 and torch.allclose(w.sum((1, 2)), valid.sum((1, 2)).float())
    for b in range(B):
        totals = [float(w[b][(labels[b] == k) & valid[b]].sum()) for k in range(K)]
        assert totals == pytest.approx([valid[b].sum().item() / K] * K)
    assert torch.allclose(w[1], torch.ones(U, V))
    torch.manual_seed(11)
    L, S = torch.randn(1, 3, U, V), torch.randn(1, 3, U, V)
    assert torch.allclose(jsd_own_image_balanced(L, S, p[1:])["mi"], jsd_own_image(L, S)["mi"])


def test_balanced_negatives_take_the_reward_for_equal_sizes_away_but_not_the_penalty_on_whole_images():
    """The lever's mechanism, with the critic each partition's best (T = -log q on the anchor's cluster, far below
    elsewhere): against the image's own positions a small cluster scores below an equal split; balanced, both reach
    the same value; an image labelled whole stays at the constant critic's -2 log 2 in both pools."""
    U = V = 4

    def best(labels: torch.Tensor, balanced: bool) -> float:
        p = F.one_hot(labels, 2).permute(0, 3, 1, 2).float()
        pairs = (~torch.eye(U * V, dtype=torch.bool))[None].float()
        if balanced:
            pairs = pairs * balanced_negative_weights(p)[:, None].flatten(2)
        same = labels.flatten(1)[:, :, None] == labels.flatten(1)[:, None, :]
        q = (pairs * same).sum(2) / pairs.sum(2)  # each anchor's share of negatives in its own cluster
        T_joint = -q.log()
        T_marginal = torch.where(same, T_joint[:, :, None].expand_as(same), torch.full(same.shape, -40.0))
        return float(bound_terms(T_joint, torch.ones_like(q, dtype=torch.bool), T_marginal, pairs)["mi"])

    small = torch.zeros(1, U, V, dtype=torch.long)
    small[0, 0, :2] = 1
    equal = (torch.arange(U)[:, None] < U // 2).long().expand(U, V)[None]
    whole = torch.zeros(1, U, V, dtype=torch.long)
    assert best(small, False) < best(equal, False) - 0.2
    assert best(small, True) == pytest.approx(best(equal, True), abs=0.01)
    assert best(whole, False) == pytest.approx(-2 * math.log(2)) == best(whole, True)


def test_balanced_negatives_need_the_assignment_s_is_built_from():
    L = torch.randn(2, 4, 3, 3)
    for negatives in ("own_image_balanced", "mixed_balanced"):
        with pytest.raises(ValueError, match=f"negatives='{negatives}' needs the assignment p'"):
            jsd_with_negatives(L, L, negatives=negatives)


def test_mixed_balanced_negatives_weigh_each_cluster_the_same_within_the_image_and_at_each_position():
    """balanced_negative_weights over="position": at each position the batch's images of each cluster there carry
    the same weight; jsd_mixed_balanced is the mean of the two balanced pools' marginals, and with clusters that are
    equal in every image and at every position it is jsd_mixed."""
    B, K, U, V = 4, 2, 2, 2
    labels = torch.zeros(B, U, V, dtype=torch.long)
    labels[0] = 1  # image 0: cluster 1 everywhere, so each position shows cluster 1 once and cluster 0 three times
    p = F.one_hot(labels, K).permute(0, 3, 1, 2).float()
    w = balanced_negative_weights(p, over="position")
    assert torch.allclose(w[0], torch.full((U, V), 2.0)) and torch.allclose(w[1:], torch.full((3, U, V), 2 / 3))
    torch.manual_seed(13)
    L, S = torch.randn(B, 3, U, V), torch.randn(B, 3, U, V)
    own = jsd_own_image(L, S, weights=balanced_negative_weights(p, over="image"))
    other = jsd_bound(L, S, weights=w)
    out = jsd_mixed_balanced(L, S, p)
    assert torch.allclose(out["marginal"], (own["marginal"] + other["marginal"]) / 2)
    checker = (torch.arange(B)[:, None, None] + torch.arange(U)[:, None] + torch.arange(V)) % 2  # equal everywhere
    p_eq = F.one_hot(checker, K).permute(0, 3, 1, 2).float()
    assert torch.allclose(jsd_mixed_balanced(L, S, p_eq)["mi"], jsd_mixed(L, S)["mi"], atol=1e-6)
    assert torch.allclose(jsd_with_negatives(L, S, negatives="mixed_balanced", p=p)["mi"], out["mi"])


def test_mixed_negatives_average_the_two_pools_and_rule_out_both_shortcuts():
    """negatives="mixed": the joint of eq. 4.12 and the mean of the own-image and other-image marginals. Its
    mechanism: a map of position (the same split in every image) meets the own-image half only, whole-image labels
    the other-image half only, and a split that differs within and between images scores above both."""
    torch.manual_seed(10)
    L, S = torch.randn(3, 4, 2, 3), torch.randn(3, 4, 2, 3)
    valid = torch.rand(3, 2, 3) > 0.2
    out = jsd_with_negatives(L, S, valid, "mixed", critic=(0.5, 0.1))
    own, other = jsd_own_image(L, S, valid, (0.5, 0.1)), jsd_bound(L, S, valid, critic=(0.5, 0.1))
    assert torch.allclose(out["marginal"], (own["marginal"] + other["marginal"]) / 2)
    assert torch.allclose(out["mi"], own["joint"] - out["marginal"])
    assert torch.allclose(jsd_mixed(L, S, valid, critic=(0.5, 0.1))["mi"], out["mi"])
    B, P, U, V = 4, 2, 4, 4
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([-3.0, 0.0])
    bands = torch.empty(B, P, U, V)
    bands[:, :, : U // 2], bands[:, :, U // 2 :] = a[:, None, None], b[:, None, None]  # upper half a, lower b
    whole = torch.stack([a, b, a, b])[:, :, None, None].expand(B, P, U, V).contiguous()
    content = bands.clone()
    content[1::2] = bands[1::2].flip(2)  # images 1, 3 have the two parts the other way up
    mixed = {name: jsd_mixed(x, x)["mi"] for name, x in [("bands", bands), ("whole", whole), ("content", content)]}
    assert jsd_own_image(bands, bands)["mi"] > jsd_bound(bands, bands)["mi"] + 4
    assert jsd_bound(whole, whole)["mi"] > jsd_own_image(whole, whole)["mi"] + 4
    assert mixed["content"] > max(mixed["bands"], mixed["whole"]) + 2


def test_head_negatives_pair_each_position_with_every_high_level_feature():
    """negatives="heads": the joint of eq. 4.12, and the marginal over (valid position, k) of softplus(T(L_ij, H_k)),
    each of the image's K H_k once (a loop); the critic applies to both."""
    torch.manual_seed(11)
    B, K, P, U, V = 2, 3, 4, 2, 3
    L, H = torch.randn(B, P, U, V), torch.randn(B, K, P)
    S = soft_global(soft_assignment(L, H, 0.5), H)
    valid = torch.rand(B, U, V) > 0.3
    out = jsd_with_negatives(L, S, valid, "heads", critic=(0.5, 0.1), H=H)
    terms = [
        F.softplus(0.5 * (L[b, :, i, j] @ H[b, k]) + 0.1)
        for b in range(B)
        for i in range(U)
        for j in range(V)
        for k in range(K)
        if valid[b, i, j]
    ]
    assert torch.allclose(out["marginal"], torch.stack(terms).mean(), atol=1e-6)
    assert torch.allclose(out["joint"], jsd_bound(L, S, valid, critic=(0.5, 0.1))["joint"])
    assert torch.allclose(jsd_uniform_heads(L, S, H, valid, (0.5, 0.1))["mi"], out["mi"])
    with pytest.raises(ValueError, match="needs the high-level features"):
        jsd_with_negatives(L, S, valid, "heads")


def test_head_negatives_do_not_reward_equal_clusters():
    """The mechanism: with a confident assignment (S_ij = H_k of its cluster), the bound given the image scores an
    equal split of every image above a 3:1 split, and the thesis's bound scores a set-balanced split above one
    cluster for most positions; against the K H_k, 1/K each, the sizes drop out and all of them score the same."""
    B, P, U, V = 4, 2, 4, 4
    H = torch.tensor([[3.0, 0.0], [-3.0, 0.0]]).expand(B, 2, P)

    def hard(rows_in_first: int, flip_odd: bool = False) -> torch.Tensor:  # S = L = H_k of each position's cluster
        k = torch.zeros(B, U, V, dtype=torch.long)
        k[:, rows_in_first:] = 1
        if flip_odd:
            k[1::2] = 1 - k[1::2]
        return H[0][k].permute(0, 3, 1, 2).contiguous()

    equal, unequal = hard(2), hard(3)
    assert jsd_own_image(equal, equal)["mi"] > jsd_own_image(unequal, unequal)["mi"] + 0.3
    balanced_set = hard(3, flip_odd=True)  # 3:1 in every image, 1:1 over the set
    assert jsd_bound(balanced_set, balanced_set)["mi"] > jsd_bound(unequal, unequal)["mi"] + 0.3
    scores_ = [
        jsd_uniform_heads(x, x, H)["mi"] for x in (equal, unequal, balanced_set, hard(4))
    ]  # hard(4): one cluster
    assert all(torch.allclose(s, scores_[0]) for s in scores_)
    with pytest.raises(ValueError, match="negative_positions=shuffled with model.objective.negatives=heads"):
        MIObjective(tau=1.0, negatives="heads", negative_positions="shuffled")


def test_affine_critic_scales_the_pairs_values_and_learns_its_scale_and_bias():
    """critic="affine": eq. 4.12 with T = a <L, S> + b, a = tau exp(s); at s = b = 0 the critic is tau <L, S>, its
    two scalars get gradients and land in the checkpoint; "dot" adds no parameters (old checkpoints keep their keys)."""
    torch.manual_seed(9)
    L, S = torch.randn(3, 4, 2, 3), torch.randn(3, 4, 2, 3)
    for negatives in ("local", "own_image"):
        scaled = jsd_with_negatives(L, S, negatives=negatives, critic=(0.5, 0.2))
        # the affine critic equals the dot product on rescaled features plus a shift of every value, checked by hand:
        T_joint = 0.5 * (L * S).sum(1) + 0.2
        assert torch.allclose(scaled["joint"], -F.softplus(-T_joint).mean())
        assert not torch.allclose(scaled["mi"], jsd_with_negatives(L, S, negatives=negatives)["mi"])
    assert torch.allclose(jsd_bound(L, S, critic=(0.5, 0.0))["mi"], jsd_bound(0.5 * L, S)["mi"])
    L_, H = torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
    objective = MIObjective(tau=0.25, critic="affine", negatives="own_image")
    a, b = objective.critic_ab()
    assert float(a.detach()) == 0.25 and float(b.detach()) == 0.0
    out = objective(L_, H)
    out["loss"].backward()
    assert objective.critic_log_scale.grad.abs() > 0 and objective.critic_bias.grad.abs() > 0
    assert float(out["critic_a"]) == 0.25
    assert set(objective.state_dict()) == {"critic_log_scale", "critic_bias"}
    assert not list(MIObjective(tau=0.25).parameters())
    with pytest.raises(ValueError, match="model.objective.critic='cosine'"):
        MIObjective(tau=1.0, critic="cosine")


def test_centred_heads_keep_p_and_drop_the_score_every_pair_shares():
    """centre_heads: p' is unchanged; the bound no longer moves when one vector m is added to every H_k (the mean of
    L that centroid heads carry), while the uncentred bound does and sits far below its range; with shared heads the
    joint and marginal scores of each L_ij move by the same -<L_ij, mean_k H_k>, checked by hand."""
    torch.manual_seed(5)
    B, K, P, U, V = 3, 4, 6, 2, 3
    L = torch.randn(B, P, U, V)
    H = torch.randn(K, P).expand(B, K, P)  # shared by every image, as prototypes and centroids
    m = 3 * torch.randn(P)
    for negatives in ("heads", "own_image", "local"):
        plain = MIObjective(tau=0.5, negatives=negatives)
        centred = MIObjective(tau=0.5, negatives=negatives, centre_heads=True)
        assert torch.allclose(centred(L, H)["p"], plain(L, H)["p"], atol=1e-6)
        assert torch.allclose(centred(L, H + m)["mi"], centred(L, H)["mi"], atol=1e-5)
        assert not torch.allclose(plain(L, H + m)["mi"], plain(L, H)["mi"], atol=1e-2)
    Hc = H - H.mean(1, keepdim=True)
    # scored_heads: the H_k forward scores, which pools.py reads a trained run's bound with
    assert torch.allclose(centred.scored_heads(H), Hc) and plain.scored_heads(H) is H
    S = soft_global(soft_assignment(L, H, 0.5), Hc)
    for negatives in ("heads", "own_image", "local"):
        by_hand = jsd_with_negatives(L, S, negatives=negatives, H=Hc)["mi"]
        assert torch.allclose(MIObjective(0.5, negatives=negatives, centre_heads=True)(L, H)["mi"], by_hand)
    # the shared score is what saturates the bound: where L too carries m, every pair's score is about |m|^2
    L_m, H_m = L + m[None, :, None, None], H + m
    assert MIObjective(tau=0.5, negatives="heads")(L_m, H_m)["mi"] < -10
    assert MIObjective(tau=0.5, negatives="heads", centre_heads=True)(L_m, H_m)["mi"] > -4


def test_scaled_critic_is_the_affine_critics_start_held_fixed():
    """critic="scaled": T = tau <L, S> with nothing learned, the same bound as "affine" before its first step, and as
    the thesis's critic on L scaled by tau; no parameters, so there is nothing for the optimizer."""
    torch.manual_seed(3)
    L, H = torch.randn(2, 4, 3, 3), torch.randn(2, 3, 4)
    for negatives in ("local", "own_image"):
        scaled = MIObjective(tau=0.25, critic="scaled", negatives=negatives)
        affine = MIObjective(tau=0.25, critic="affine", negatives=negatives)
        assert torch.allclose(scaled(L, H)["mi"], affine(L, H)["mi"])
        assert not torch.allclose(scaled(L, H)["mi"], MIObjective(tau=0.25, negatives=negatives)(L, H)["mi"])
        assert not list(scaled.parameters()) and "critic_a" not in scaled(L, H)
    S = torch.randn(2, 4, 3, 3)
    assert torch.allclose(
        jsd_bound(L, S, critic=MIObjective(0.25, critic="scaled").critic_ab())["mi"], jsd_bound(0.25 * L, S)["mi"]
    )


def test_negative_positions_is_checked():
    with pytest.raises(ValueError, match="negative_positions='x'"):
        jsd_bound(torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1, 1), negative_positions="x")


def test_correspondences_pick_the_closest_other_image_and_its_closest_valid_patch():
    """Image 1 is image 0 with its positions reversed (its closest image); image 2 is unrelated. Every patch of 0
    finds itself in 1, and a patch made invalid in 1 is never a match."""
    torch.manual_seed(0)
    B, Q, U, V = 3, 8, 2, 3
    f0 = torch.randn(Q, U * V)
    f = torch.stack([f0, f0.flip(1), -f0 + 0.1 * torch.randn(Q, U * V)]).view(B, Q, U, V)
    partner, match = correspondences(f)
    assert partner[:2].tolist() == [1, 0]
    assert match[0].tolist() == list(reversed(range(U * V)))
    valid = torch.ones(B, U, V, dtype=torch.bool)
    valid[1].view(-1)[U * V - 1] = False  # the patch that image 0's first patch would match
    partner, match = correspondences(f, valid)
    assert match[0, 0].item() != U * V - 1 and (match[0, 1:] == match[0, 1:].new_tensor(range(U * V - 2, -1, -1))).all()


def test_correspondence_joint_matches_the_loop_and_rewards_clusters_shared_across_images():
    torch.manual_seed(1)
    B, P, U, V = 3, 4, 2, 2
    L, S = torch.randn(B, P, U, V), torch.randn(B, P, U, V)
    partner = torch.tensor([2, 0, 1])
    match = torch.randint(0, U * V, (B, U * V))
    valid = torch.rand(B, U, V) > 0.3
    Lf, Sf, vf = L.flatten(2), S.flatten(2), valid.flatten(1)
    terms = [
        -F.softplus(-(Lf[b, :, n] @ Sf[partner[b], :, match[b, n]]))
        for b in range(B)
        for n in range(U * V)
        if vf[b, n] and vf[partner[b], match[b, n]]
    ]
    assert torch.allclose(correspondence_joint(L, S, partner, match, valid), torch.stack(terms).mean(), atol=1e-6)
    # the mechanism: two images of the same two regions; the term is higher when cluster k is the same region in
    # both images than when the second image's clusters are swapped (image 0's anchors then meet the other H)
    H = torch.tensor([[3.0, 0.0], [0.0, 3.0]]).expand(2, 2, 2)  # shared prototypes (P = 2)
    L2 = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]).view(1, 2, 2, 2).expand(2, 2, 2, 2)
    p_same = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]]).view(1, 2, 2, 2).expand(2, 2, 2, 2)
    p_swap = torch.stack([p_same[0], p_same[1].flip(0)])
    partner, match = correspondences(L2)
    same = correspondence_joint(L2, soft_global(p_same, H), partner, match)
    swap = correspondence_joint(L2, soft_global(p_swap, H), partner, match)
    assert same > swap + 0.3  # -0.05 vs -0.37: half the anchors go from T = 3 to T = 0


def test_correspondence_lever_adds_its_term_and_needs_reference_features():
    torch.manual_seed(2)
    L, H = torch.randn(4, 8, 3, 3), torch.randn(4, 3, 8)
    plain = MIObjective(tau=0.5)(L, H)
    lever = MIObjective(tau=0.5, correspondence_weight=2.0)(L, H, reference=L)
    assert torch.allclose(lever["loss"], plain["loss"] - 2.0 * lever["correspondence"])
    with pytest.raises(ValueError, match="reference"):
        MIObjective(tau=0.5, correspondence_weight=1.0)(L, H)
    torch.manual_seed(5)
    random = MIObjective(tau=0.5, correspondence_weight=1.0, correspondence_partner="random")(L, H, reference=L)
    torch.manual_seed(5)
    shift = torch.randint(1, 4, (1,))
    partner, match = correspondences(L, partner=(torch.arange(4) + shift) % 4)
    assert (partner != torch.arange(4)).all()
    S = soft_global(soft_assignment(L, H, 0.5), H)
    assert torch.allclose(random["correspondence"], correspondence_joint(L, S, partner, match))
    with pytest.raises(ValueError, match="correspondence_partner='x'"):
        MIObjective(tau=0.5, correspondence_partner="x")


def test_correspondence_term_is_in_the_units_of_the_bounds_critic():
    # with critic="affine" the bound is a <L, S> + b; the correspondence term added to it must be too, or at P = 256
    # its raw <L, S> (tens) saturates softplus while the bound sits near -2 log 2
    torch.manual_seed(3)
    L, H = torch.randn(4, 8, 3, 3), torch.randn(4, 3, 8)
    objective = MIObjective(tau=0.5, critic="affine", correspondence_weight=1.0)
    with torch.no_grad():
        objective.critic_log_scale.fill_(0.7)
        objective.critic_bias.fill_(-0.4)
    out = objective(L, H, reference=L)
    partner, match = correspondences(L)
    S = soft_global(soft_assignment(L, H, 0.5), H)
    a = 0.5 * torch.tensor(0.7).exp()
    T = a * (L.flatten(2) * S.flatten(2)[partner].gather(2, match[:, None].expand(4, 8, 9))).sum(1) - 0.4
    assert torch.allclose(out["correspondence"], -F.softplus(-T).mean(), atol=1e-6)
    assert not torch.allclose(out["correspondence"], correspondence_joint(L, S, partner, match))  # dot differs
    out["loss"].backward()
    assert objective.critic_log_scale.grad is not None and objective.critic_log_scale.grad.abs() > 0


def test_roll_moves_each_image_by_its_own_shift_and_overlap_marks_what_did_not_wrap():
    from misseg.objectives.views import overlap, roll

    y = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    shift = torch.tensor([[1, -2], [0, 3]])
    moved = roll(y, shift)
    for b in range(2):  # the loop the vectorised gather replaces
        assert torch.equal(moved[b], torch.roll(y[b], shifts=tuple(shift[b].tolist()), dims=(-2, -1)))
    assert torch.equal(roll(moved, -shift), y)
    seen = overlap(shift, 4, 5)  # image 0: content of rows 0-2 lands on rows 1-3, of columns 2-4 on columns 0-2
    assert seen[0].tolist() == [[False, False, True, True, True]] * 3 + [[False] * 5]
    assert seen[1].tolist() == [[True, True, False, False, False]] * 4


def test_a_shifted_second_view_is_the_one_view_bound_for_a_network_that_moves_with_the_content():
    """view_shift: with no jitter and no flip, a second view that is the first one moved (features moved with it, as a
    network that follows content gives) scores the one-view bound on the positions that did not wrap; the same view
    read by a network that codes position (its map stays where it was) scores lower: the lever's reason."""
    torch.manual_seed(0)
    B, P, U, V = 4, 3, 6, 6
    L = torch.zeros(B, P, U, V)
    L[:, 0, : U // 2], L[:, 0, U // 2 :] = 2.0, -2.0  # the same upper/lower split in every image: a position code
    L = L + 0.1 * torch.randn(B, P, U, V)
    H = torch.tensor([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]]).expand(B, 2, P)
    unflipped = torch.zeros(B, dtype=torch.bool)
    shift = torch.tensor([[2, 0], [-2, 1], [1, -1], [0, 0]])
    objective = MIObjective(tau=1.0, negatives="own_image", critic="scaled", views=2, view_shift=2)
    one_view = objective(L, H, second=(L, H, unflipped))["mi"]
    assert torch.allclose(one_view, MIObjective(tau=1.0, negatives="own_image", critic="scaled")(L, H)["mi"])
    follows = objective(L, H, second=(roll(L, shift), H, unflipped, shift))["mi"]
    seen = overlap(shift, U, V)
    on_overlap = jsd_with_negatives(
        L, soft_global(soft_assignment(L, H, 1.0), H), seen, "own_image", "same", (1.0, 0.0)
    )
    assert torch.allclose(follows, on_overlap["mi"], atol=1e-6)
    stays = objective(L, H, second=(L, H, unflipped, shift))["mi"]  # the position code, read in the moved view
    assert stays < follows - 0.1
    junk = roll(L, shift).clone()
    junk[~roll(seen[:, None], shift).expand_as(junk)] = 50.0  # content that wrapped around: never scored
    assert torch.allclose(objective(L, H, second=(junk, H, unflipped, shift))["mi"], follows, atol=1e-6)
    with pytest.raises(ValueError, match="view_shift=-1"):
        MIObjective(tau=1.0, view_shift=-1)


def test_pseudo_label_loss_is_the_cross_entropy_of_the_upsampled_logits_over_the_labelled_pixels():
    torch.manual_seed(3)
    L, H, tau = torch.randn(2, 8, 3, 3), torch.randn(2, 4, 8), 0.5
    targets = torch.randint(0, 4, (2, 6, 6))
    logits = F.interpolate(tau * scores(L, H), size=(6, 6), mode="bilinear", align_corners=False)
    assert torch.allclose(pseudo_label_loss(L, H, tau, targets), F.cross_entropy(logits, targets))
    some = targets.clone()
    some[0] = 255  # the first image has no target: only the second one's pixels count
    assert torch.allclose(pseudo_label_loss(L, H, tau, some), F.cross_entropy(logits[1:], targets[1:]))
    none = torch.full_like(targets, 255)
    assert pseudo_label_loss(L, H, tau, none) == 0  # not NaN
    # its gradient moves p' towards the targets: one step raises the targets' probability
    L.requires_grad_(True)
    pseudo_label_loss(L, H, tau, targets).backward()
    after = F.interpolate(tau * scores(L - 0.5 * L.grad, H), size=(6, 6), mode="bilinear", align_corners=False)
    assert F.cross_entropy(after, targets) < F.cross_entropy(logits, targets)


def test_crf_target_lever_adds_its_term_and_needs_targets():
    torch.manual_seed(4)
    L, H = torch.randn(4, 8, 3, 3), torch.randn(4, 2, 8)
    targets = torch.randint(0, 2, (4, 12, 12))
    plain = MIObjective(tau=0.5)(L, H)
    lever = MIObjective(tau=0.5, crf_target_weight=2.0)(L, H, targets=targets)
    assert torch.allclose(lever["loss"], plain["loss"] + 2.0 * lever["crf_target"])
    assert torch.allclose(lever["crf_target"], pseudo_label_loss(L, H, 0.5, targets))
    assert "crf_target" not in plain
    with pytest.raises(ValueError, match="targets"):
        MIObjective(tau=0.5, crf_target_weight=1.0)(L, H)
    with pytest.raises(ValueError, match="crf_target_weight=-1"):
        MIObjective(tau=0.5, crf_target_weight=-1)


def test_crf_target_start_leaves_the_term_out_before_its_step():
    torch.manual_seed(5)
    L, H = torch.randn(4, 8, 3, 3), torch.randn(4, 2, 8)
    targets = torch.randint(0, 2, (4, 12, 12))
    late = MIObjective(tau=0.5, crf_target_weight=1.0, crf_target_start=10)
    assert [late.crf_target_on(s) for s in (0, 9, 10, 11)] == [False, False, True, True]
    assert not MIObjective(tau=0.5, crf_target_start=10).crf_target_on(20)  # no weight, no target
    assert MIObjective(tau=0.5, crf_target_weight=1.0).crf_target_on(0)  # 0: from the first step
    before = late(L, H, step=9)  # before its step the caller passes no targets: the loss without the term, no error
    assert "crf_target" not in before and torch.allclose(before["loss"], MIObjective(tau=0.5)(L, H)["loss"])
    assert "crf_target" not in late(L, H, targets=targets, step=9)  # ... and targets given early are not used
    after = late(L, H, targets=targets, step=10)
    assert torch.allclose(after["loss"], before["loss"] + after["crf_target"])
    for step in (10, None):  # from its step on, or with no step said, missing targets are an error, not a silent 0
        with pytest.raises(ValueError, match="targets"):
            late(L, H, step=step)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="crf_target_start"):
            MIObjective(tau=0.5, crf_target_start=bad)
