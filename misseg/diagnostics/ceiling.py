"""The most eq. 4.12 can give a partition: the JSD bound's ceiling over every critic, for a pool of negatives.

Let S carry a hard partition (S_ij = H_c, c the cluster of position ij) and let the critic see everything L_ij
holds (its image, its place, its cluster). A positive pair always shares the anchor's cluster; a negative drawn from
the pool shares it with probability q_ij and tells the critic nothing else. Per anchor the bound
-softplus(-T_joint) - E_neg[softplus(T_neg)] is then largest at T = -log q_ij on the anchor's cluster and T -> -inf
on the others, where it is

    g(q) = -log(1 + q) - q log(1 + 1/q),

-2 log 2 (the constant critic's value) at q = 1 and 0 at q = 0; the ceiling is the mean of g over the anchors
(2 JS(joint || product) - 2 log 2, per anchor). Which partitions a pool prefers is therefore a question of q alone:
with negatives from the image's other positions (`own_image`), q is the share of the image in the anchor's
cluster, lowest on average for an equal split of every image (g = -0.955 at K = 2); from the same position of the
other images (`local`, the thesis), the share of the other images with the same cluster there, 1 for a map
repeated in every image; `mixed`, the mean of the two; the K heads (`heads`), 1/K whatever the partition; the
image's other positions with each of its clusters weighing the same (`own_image_balanced`), 1/K_x for the K_x
clusters image x holds, whatever their sizes; `mixed_balanced`, half that and half 1/K_ij for the K_ij clusters the
images show at the anchor's position (1 for a map repeated in every image).
A learned critic reaches at most this; how close a run comes is how much of its partition the critic reads.
Pure tensor code, no data or Lightning: labels in, numbers out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# model.objective.negatives, less "global" (= local on one process)
POOLS = ("own_image", "local", "mixed", "heads", "own_image_balanced", "mixed_balanced")


def g(q: torch.Tensor) -> torch.Tensor:
    """The largest value of eq. 4.12's per-anchor term when a negative shares the anchor's cluster with probability
    q (module docstring): `paired` without a correspondence; q log(1 + 1/q) -> 0 as q -> 0."""
    return paired(q, 0.0)


def pool_shares(labels: torch.Tensor, K: int, pool: str) -> torch.Tensor:
    """(N, H, W, K): for each anchor of int labels (N, H, W) in 0..K-1 (negative = ignored: neither anchor nor
    negative; NaN rows), the probability that a negative of `pool` falls in each cluster. own_image: the image's
    other valid positions; local: the same position of the other images valid there (the whole set's, the limit of
    the batches the bound sees); mixed: half of each (`jsd_mixed`); heads: 1/K; own_image_balanced: 1/K_x for each
    of the K_x clusters image x holds (the anchor itself not left out: its weight is one position's among its
    cluster's); mixed_balanced: half that, half 1/K_ij for each of the K_ij clusters the images show at the
    position. Each row is scaled by the anchor's count of negatives over the mean count: eq. 4.12 averages its
    marginal over all pairs, so an anchor with fewer valid negatives (ignored pixels) weighs less there than in the
    joint term."""
    if pool not in POOLS:
        raise ValueError(f"pool: unknown pool {pool!r}; use one of {', '.join(POOLS)}")
    valid = labels >= 0
    onehot = F.one_hot(labels.clamp_min(0), K).double() * valid[..., None]  # (N, H, W, K)

    def share(counts: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        others = ((totals - 1).clamp_min(0) * valid)[..., None]  # the pool's other members (the anchor left out)
        return (counts - onehot) / others.clamp_min(1) * others / others[valid].mean().clamp_min(1)

    own = share(onehot.sum((1, 2), keepdim=True), valid.sum((1, 2), keepdim=True).double())
    local = share(onehot.sum(0, keepdim=True), valid.sum(0, keepdim=True).double())
    held = (onehot.sum((1, 2), keepdim=True) > 0).double()  # (N, 1, 1, K): the clusters image x holds
    own_balanced = (held / held.sum(-1, keepdim=True).clamp_min(1)).expand_as(own)
    here = (onehot.sum(0, keepdim=True) > 0).double()  # (1, H, W, K): the clusters the images show at a position
    shares = {
        "own_image": own,
        "local": local,
        "mixed": (own + local) / 2,
        "heads": torch.full_like(own, 1 / K),
        "own_image_balanced": own_balanced,
        "mixed_balanced": (own_balanced + (here / here.sum(-1, keepdim=True).clamp_min(1)).expand_as(own)) / 2,
    }[pool]
    return shares.masked_fill(~valid[..., None], float("nan"))


def share_of(shares: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
    """(N, H, W): shares (N, H, W, K) read at each anchor's cluster in `clusters` (N, H, W; negative reads 0's)."""
    return shares.gather(-1, clusters.clamp_min(0)[..., None])[..., 0]


def same_cluster_share(labels: torch.Tensor, K: int, pool: str) -> torch.Tensor:
    """(N, H, W) q: the probability that a negative of `pool` falls in the anchor's cluster (`pool_shares`; NaN at
    ignored anchors)."""
    return share_of(pool_shares(labels, K, pool), labels)


def paired(q: torch.Tensor, w: float) -> torch.Tensor:
    """The largest value of an anchor's terms in eq. 4.12 + w x the correspondence term (`correspondence_joint`: its
    partner's S scored as a positive) when the partner shares the anchor's cluster: -(1+w) log(1 + q/(1+w))
    - q log(1 + (1+w)/q), g(q) at w = 0."""
    q, a = q.double(), 1.0 + w
    return -a * torch.log1p(q / a) - torch.where(q > 0, q * torch.log1p(a / q.clamp_min(1e-300)), torch.zeros_like(q))


def unpaired(q_partner: torch.Tensor, w: float) -> torch.Tensor:
    """What the partner's cluster adds when it is not the anchor's (the critic scores it as a positive with weight w
    and as a negative with weight q_partner): -q_p log(1 + w/q_p) - w log(1 + q_p/w); 0 at w = 0."""
    qp = q_partner.double()
    if w == 0:
        return torch.zeros_like(qp)
    return -torch.where(qp > 0, qp * torch.log1p(w / qp.clamp_min(1e-300)), torch.zeros_like(qp)) - w * torch.log1p(
        qp / w
    )


def bound_ceiling(
    labels: torch.Tensor, K: int, pool: str, partner_labels: torch.Tensor | None = None, weight: float = 0.0
) -> float:
    """The mean over the valid anchors of labels (N, H, W) of the most eq. 4.12 gives this partition with `pool`'s
    negatives: g(q), -2 log 2 (a partition the pool cannot tell from its negatives) to 0. With partner_labels (N, H, W),
    the cluster of each anchor's correspondence (model.objective.correspondence_weight; negative = none) and its
    weight w: the most of eq. 4.12 + w x the correspondence term, `paired` where the partner shares the anchor's
    cluster and g(q) + `unpaired` where it does not, so a partition the correspondences agree with gains."""
    valid = labels >= 0
    shares = pool_shares(labels, K, pool)
    q = share_of(shares, labels)
    if partner_labels is None or weight == 0:
        return float(g(q[valid]).mean())
    has = valid & (partner_labels >= 0)
    agree = has & (partner_labels == labels)
    q_p = share_of(shares, partner_labels)
    value = torch.where(agree, paired(q, weight), g(q) + torch.where(has, unpaired(q_p, weight), torch.zeros_like(q)))
    return float(value[valid].mean())
