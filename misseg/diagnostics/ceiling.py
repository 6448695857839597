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
clusters image x holds, whatever their sizes.
A learned critic reaches at most this; how close a run comes is how much of its partition the critic reads.
Pure tensor code, no data or Lightning: labels in, numbers out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# model.objective.negatives, less "global" (= local on one process)
POOLS = ("own_image", "local", "mixed", "heads", "own_image_balanced")


def g(q: torch.Tensor) -> torch.Tensor:
    """The largest value of eq. 4.12's per-anchor term when a negative shares the anchor's cluster with probability
    q (module docstring); q log(1 + 1/q) -> 0 as q -> 0."""
    q = q.double()
    return -torch.log1p(q) - torch.where(q > 0, q * torch.log1p(1 / q.clamp_min(1e-300)), torch.zeros_like(q))


def same_cluster_share(labels: torch.Tensor, K: int, pool: str) -> torch.Tensor:
    """(N, H, W) q: the probability that a negative of `pool` falls in the anchor's cluster, for int labels
    (N, H, W) in 0..K-1 (negative = ignored: neither anchor nor negative; its q is NaN). own_image: the image's
    other valid positions; local: the same position of the other images valid there (the whole set's, the limit of
    the batches the bound sees); mixed: half of each (`jsd_mixed`); heads: 1/K; own_image_balanced: 1/K_x, K_x the
    clusters image x holds (the anchor itself not left out: its weight is one position's among the cluster's)."""
    if pool not in POOLS:
        raise ValueError(f"pool: unknown pool {pool!r}; use one of {', '.join(POOLS)}")
    valid = labels >= 0
    onehot = F.one_hot(labels.clamp_min(0), K).double() * valid[..., None]  # (N, H, W, K)
    own_count = onehot.gather(-1, labels.clamp_min(0)[..., None])[..., 0]  # 1 at valid anchors, 0 elsewhere

    def share(counts: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        # the anchor's own cluster among the pool's other members (the anchor itself left out, as the bound does),
        # times the anchor's count of negatives over the mean count: eq. 4.12 averages its marginal over all pairs,
        # so an anchor with fewer valid negatives (ignored pixels) weighs less there than in the joint term
        same = counts.expand_as(onehot).gather(-1, labels.clamp_min(0)[..., None])[..., 0] - own_count
        others = (totals.expand_as(same) - 1).clamp_min(0) * valid
        return same / others.clamp_min(1) * others / others[valid].mean().clamp_min(1)

    own = share(onehot.sum((1, 2), keepdim=True), valid.sum((1, 2), keepdim=True).double())
    local = share(onehot.sum(0, keepdim=True), valid.sum(0, keepdim=True).double())
    held = (onehot.sum((1, 2)) > 0).sum(1).clamp_min(1).double()[:, None, None].expand_as(own)  # K_x
    q = {"own_image": own, "local": local, "mixed": (own + local) / 2, "heads": torch.full_like(own, 1 / K)}
    q["own_image_balanced"] = 1 / held
    return q[pool].masked_fill(~valid, float("nan"))


def bound_ceiling(labels: torch.Tensor, K: int, pool: str) -> float:
    """The mean of g(q) over the valid anchors of labels (N, H, W): the most eq. 4.12 gives this partition with
    `pool`'s negatives, -2 log 2 (a partition the pool cannot tell from its negatives) to 0."""
    q = same_cluster_share(labels, K, pool)
    return float(g(q[labels >= 0]).mean())
