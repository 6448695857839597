"""The MI objective of the thesis, as pure tensor functions plus a small nn.Module.

Shapes: L (B, P, U, V) local features, H (B, K, P) high-level features, p (B, K, U, V) soft assignment,
S (B, P, U, V) soft global features, valid (B, U, V) bool.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from misseg.objectives import CORRESPONDENCE_PARTNERS, CRITICS, NEGATIVE_POSITIONS, NEGATIVES, check_own_image
from misseg.objectives.views import overlap, roll, unflip

Critic = tuple[torch.Tensor | float, torch.Tensor | float]  # (a, b) of the critic T = a <L, S> + b

# The contractions below are written as torch.bmm on BLAS-friendly layouts rather than einsum: on CPU,
# einsum handed bmm strided views it ran 3x slower (forward + backward; see BENCHMARKS.md).


def check_option(key: str, value: str, choices: tuple[str, ...]) -> None:
    """ValueError naming model.objective.<key> unless value is one of choices (the objective's string options)."""
    if value not in choices:
        raise ValueError(f"model.objective.{key}={value!r}: use one of {choices}")


def scores(L: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Dot-product discriminator T(L_ij, H_k) = <L_ij, H_k>.  -> (B, K, U, V)"""
    B, _, U, V = L.shape
    return torch.bmm(H, L.reshape(B, L.shape[1], U * V)).view(B, H.shape[1], U, V)


def soft_assignment(L: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 4.8 / 4.14: p'_ijk = softmax_k(tau * <L_ij, H_k>).  -> (B, K, U, V)"""
    return torch.softmax(tau * scores(L, H), dim=1)


def soft_global(p: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Eq. 4.9: S_ij = sum_k p'_ijk H_k.  -> (B, P, U, V)"""
    B, K, U, V = p.shape
    return torch.bmm(H.transpose(1, 2), p.reshape(B, K, U * V)).view(B, H.shape[2], U, V)


def straight_through(p: torch.Tensor) -> torch.Tensor:
    """A lever beyond the thesis: one_hot(argmax_k p'_ijk) in the forward pass, p''s gradient in the backward.
    Why: with S = sum_k p' H_k the bound can be met by the soft values of p' (with K = 2, p'_0 is a scalar per
    position), so the argmax, the prediction, need not follow anything; from the one-hot, S tells the critic the
    cluster only, as IIC's objective sees only the assignments.  -> (B, K, U, V)"""
    hard = F.one_hot(p.argmax(1), p.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    return hard + p - p.detach()


def weights_of_S(p: torch.Tensor, detach_assignment: bool = False, hard_assignment: bool = False) -> torch.Tensor:
    """The p' that eq. 4.9 weights the H_k with: as computed, detached (a constant target), and/or one-hot."""
    p = straight_through(p) if hard_assignment else p
    return p.detach() if detach_assignment else p


def region_conditioned(L: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    """A lever beyond the thesis: H_k + R_k, with R_k = sum_ij p'_ijk L_ij / sum_ij p'_ijk the mean local feature
    of the region that the image-level H_k claims (p' from eq. 4.8 with the unconditioned H). It ties each
    high-level feature to a region of its own image, which eq. 4.10 alone does not.  -> (B, K, P)"""
    B, K, U, V = H.shape[0], H.shape[1], L.shape[2], L.shape[3]
    p = soft_assignment(L, H, tau).reshape(B, K, U * V)
    R = torch.bmm(p, L.reshape(B, L.shape[1], U * V).transpose(1, 2))  # (B, K, P)
    return H + R / p.sum(2, keepdim=True).clamp_min(1e-6)


def pool_valid(valid: torch.Tensor, size: tuple[int, int], min_fraction: float = 0.5) -> torch.Tensor:
    """(B, H, W) bool pixel mask -> (B, U, V) bool: a patch counts when >= min_fraction of its pixels do."""
    frac = F.adaptive_avg_pool2d(valid[:, None].float(), size)[:, 0]
    return frac >= min_fraction


def jsd_bound(
    L: torch.Tensor,
    S: torch.Tensor,
    valid: torch.Tensor | None = None,
    S_neg: torch.Tensor | None = None,
    valid_neg: torch.Tensor | None = None,
    self_offset: int = 0,
    negative_positions: str = "same",
    critic: Critic | None = None,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. 4.12, the Jensen-Shannon MI lower bound with the dot-product critic T(L, S) = <L, S>:

        E_joint[-softplus(-T(L_ij(x), S_ij(x)))] - E_marginal[softplus(T(L_ij(x), S_ij(x')))]

    Positives pair each position with its own image; negatives pair it with the same position of every
    other image of the batch: all B(B-1) pairs in one (UV)-batched matrix product.
    A negative pair counts only where the position is valid in both images, so invalid positions
    receive no gradient from either term.

    S_neg / valid_neg (N, P, U, V) / (N, U, V): the pool the negatives come from (default: S / valid,
    the local batch); anchor b's own image is row self_offset + b of that pool and is skipped.
    negative_positions (a lever beyond the thesis): "same" pairs position ij with position ij of the other
    images (the thesis's E_marginal as written); "shuffled" pairs it with position pi(ij) of the other images,
    pi one random permutation of the U*V positions per call. Why: with "same", a class that sits at the same
    place in most images (a centred person, sky at the top) gives the same S_ij in x and x', so the bound
    penalises exactly the consistent labelling the evaluation rewards; "shuffled" only asks the labelling to
    differ between the pixels of the whole batch.
    critic: (a, b) of the critic a <L, S> + b (`bound_terms`); None is the thesis's <L, S>.
    weights (N, U, V), or None for 1: the weight of each image of the pool as a negative at each position
    (`balanced_negative_weights(..., over="position")`; with negative_positions="same" only).
    """
    B, _, U, V = L.shape
    if valid is None:
        valid = torch.ones(B, U, V, dtype=torch.bool, device=L.device)
    if S_neg is None:
        S_neg, valid_neg = S, valid
    elif valid_neg is None:
        valid_neg = torch.ones(S_neg.shape[0], U, V, dtype=torch.bool, device=L.device)
    check_option("negative_positions", negative_positions, NEGATIVE_POSITIONS)
    if negative_positions == "shuffled":
        pi = torch.randperm(U * V, device=L.device)
        S_neg = S_neg.flatten(2)[:, :, pi].view_as(S_neg)
        valid_neg = valid_neg.flatten(1)[:, pi].view_as(valid_neg)
    # (B, N, U, V): anchor b, other image c; one (B x P) @ (P x N) product per position
    N = S_neg.shape[0]
    L_pos = L.flatten(2).permute(2, 0, 1).contiguous()  # (UV, B, P)
    S_pos = S_neg.flatten(2).permute(2, 0, 1).contiguous()  # (UV, N, P)
    T_marginal = torch.bmm(L_pos, S_pos.transpose(1, 2)).permute(1, 2, 0).reshape(B, N, U, V)
    own = torch.arange(B, device=L.device)[:, None] + self_offset
    other = (own != torch.arange(N, device=L.device)[None, :])[:, :, None, None]
    pair_valid = valid[:, None] & valid_neg[None, :] & other
    if weights is not None:
        pair_valid = pair_valid * weights[None]
    return bound_terms((L * S).sum(1), valid, T_marginal, pair_valid, critic)


def bound_terms(
    T_joint: torch.Tensor,
    valid: torch.Tensor,
    T_marginal: torch.Tensor,
    pair_valid: torch.Tensor,
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. 4.12's two expectations from the values <L, S> of the pairs, each averaged over its valid pairs, with
    the critic T = a <L, S> + b, (a, b) = critic: None is the thesis's dot product; `MIObjective` learns them
    under critic="affine"."""
    if critic is not None:  # None: the thesis's T = <L, S>, without two passes over the B x N x UV values
        a, b = critic
        T_joint, T_marginal = a * T_joint + b, a * T_marginal + b
    w_joint, w_marginal = valid.float(), pair_valid.float()
    joint = (-F.softplus(-T_joint) * w_joint).sum() / w_joint.sum().clamp_min(1.0)
    marginal = (F.softplus(T_marginal) * w_marginal).sum() / w_marginal.sum().clamp_min(1.0)
    return {"mi": joint - marginal, "joint": joint, "marginal": marginal}


def jsd_own_image(
    L: torch.Tensor,
    S: torch.Tensor,
    valid: torch.Tensor | None = None,
    critic: Critic | None = None,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """A lever beyond the thesis: eq. 4.12 with x' = x, negatives pairing L_ij(x) with S_i'j'(x) at every other
    position i'j' of the same image, so the bound estimates I(L; S | x) instead of I(L; S).
    Why: with x' another image, the bound is met by anything that tells images apart: an image code in the H_k
    (experiments/scale section 12) or clusters that label whole images (section 17). Given the image, such a code
    carries nothing; only a partition inside each image raises this bound.  All (UV)^2 pairs of each image in one
    batched product (B x UV x UV values: 16 x 256 x 256 at the CPU budget, 64 x 1024 x 1024 at the thesis's).
    weights (B, U, V), or None for 1: the weight of each position as a negative (`balanced_negative_weights`)."""
    B, _, U, V = L.shape
    if valid is None:
        valid = torch.ones(B, U, V, dtype=torch.bool, device=L.device)
    T_marginal = torch.bmm(L.flatten(2).transpose(1, 2), S.flatten(2))  # (B, UV anchor, UV other position)
    v = valid.flatten(1)
    other = ~torch.eye(U * V, dtype=torch.bool, device=L.device)
    pairs = v[:, :, None] & v[:, None, :] & other
    if weights is not None:
        pairs = pairs * weights.flatten(1)[:, None, :]
    return bound_terms((L * S).sum(1), valid, T_marginal, pairs, critic)


@torch.no_grad()
def balanced_negative_weights(p: torch.Tensor, valid: torch.Tensor | None = None, over: str = "image") -> torch.Tensor:
    """(B, U, V) weights of the positions of a pool of negatives such that each of the K clusters carries the same
    weight in it, whatever its size. over="image": the pool is an image's positions (`own_image_balanced`); position
    ij weighs sum_k p'_ijk / (K pi_k), pi_k the image's mean p'_k over its valid positions. over="position": the pool
    is the batch's images at one position (the thesis's E_marginal, `mixed_balanced`'s other half); pi_k is the mean
    p'_k of the batch's valid images there. pi_k is floored at one member's share; the weights of a pool's valid
    members sum to their number (0 at invalid ones). Held constant: a reweighting of the pool, not a term to optimise
    (eq. 4.12's E_marginal with the pool's p(S) replaced by an equal mixture of its clusters)."""
    B, K, U, V = p.shape
    v = torch.ones(B, U, V, dtype=torch.bool, device=p.device) if valid is None else valid
    dims = {"image": (2, 3), "position": (0,)}[over]  # the pool's members, in p's (B, K, U, V) axes
    vk = v[:, None].to(p.dtype)
    n = vk.sum(dims, keepdim=True).clamp_min(1)  # members of each pool
    pi = (p * vk).sum(dims, keepdim=True) / n  # (B or 1, K, 1 or U, 1 or V)
    w = (p / (K * torch.maximum(pi, 1 / n))).sum(1, keepdim=True) * vk
    return (w * n / w.sum(dims, keepdim=True).clamp_min(1e-12))[:, 0]


def jsd_own_image_balanced(
    L: torch.Tensor,
    S: torch.Tensor,
    p: torch.Tensor,
    valid: torch.Tensor | None = None,
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """A lever beyond the thesis: `jsd_own_image` with each cluster of the image carrying the same weight among the
    negatives (`balanced_negative_weights` of p', the assignment S is built from).
    Why: with negatives from the image, an anchor's negative shares its cluster with probability q = the share of the
    image in that cluster, and the most the bound can give a partition is the mean of g(q) (misseg/diagnostics/
    ceiling.py), highest for an equal split of every image: COCO-Persons' classes (small persons) sit 0.21 nats
    below it, below a split that follows nothing (experiments/scale section 35). Reweighted, q = 1/K for every
    anchor of an image that holds all K clusters, whatever their sizes, so sizes drop out as with the K H_k as
    negatives (`jsd_uniform_heads`); unlike those, an image labelled whole still pays (q = 1 there), the shortcut
    the heads pool let through (section 31). Measured on COCO-Persons (section 35): 1 of 3 seeds up, rejected; a map
    of rows ties with the classes under this pool, and the rows stayed."""
    return jsd_own_image(L, S, valid, critic, weights=balanced_negative_weights(p, valid, "image"))


@torch.no_grad()
def correspondences(
    features: torch.Tensor, valid: torch.Tensor | None = None, partner: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest neighbours across images (STEGO's feature correspondences, in their simplest form).

    features (B, Q, U, V): the features the correspondences are read from. Each image b gets a partner c(b): the other
    image of the batch whose mean-pooled feature is closest in cosine; each position ij of b gets m(ij): the valid
    position of c(b) whose feature is closest in cosine.  -> partner (B,), match (B, U*V) flat indices into c(b).
    partner: (B,) the partners to use instead (e.g. a random other image).
    """
    B, Q, U, V = features.shape
    f = F.normalize(features.flatten(2).float(), dim=1)  # (B, Q, UV)
    if partner is None:
        g = F.normalize(f.mean(2), dim=1)  # (B, Q)
        image_sim = g @ g.T
        image_sim.fill_diagonal_(float("-inf"))
        partner = image_sim.argmax(1)
    sim = torch.bmm(f.transpose(1, 2), f[partner])  # (B, UV anchor, UV partner)
    if valid is not None:
        sim.masked_fill_(~valid.flatten(1)[partner][:, None, :], float("-inf"))
    return partner, sim.argmax(2)


def random_partners(
    B: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B,) a random other image for every image of the batch: one random cyclic shift by 1 ... B - 1."""
    shift = torch.randint(1, max(B, 2), (1,), generator=generator, device=device)
    return (torch.arange(B, device=device) + shift) % B


def correspondence_joint(
    L: torch.Tensor,
    S: torch.Tensor,
    partner: torch.Tensor,
    match: torch.Tensor,
    valid: torch.Tensor | None = None,
    critic: Critic | None = None,
) -> torch.Tensor:
    """A lever beyond the thesis: E[-softplus(-T(L_ij(x), S_m(ij)(c(x))))], eq. 4.12's joint term with the
    positive taken at the corresponding position of another image (`correspondences`) instead of the same
    position of the same image. Why: eq. 4.12 is met by any balanced partition the network computes confidently
    (experiments/scale, "Why the clusters miss the classes"); this term asks cluster k to mean the same thing in
    every image, as far as the correspondence features say two patches are the same thing.
    critic: (a, b) of the bound's critic T = a <L, S> + b (None: <L, S>), so that the term is in the units of the
    bound it is added to.
    """
    B, P, U, V = L.shape
    S_c = S.flatten(2)[partner].gather(2, match[:, None, :].expand(B, P, U * V))  # (B, P, UV)
    T = (L.flatten(2) * S_c).sum(1)  # (B, UV)
    if critic is not None:
        T = critic[0] * T + critic[1]
    w = (
        torch.ones_like(T)
        if valid is None
        else (valid.flatten(1) & valid.flatten(1)[partner].gather(1, match)).to(T.dtype)
    )
    return (-F.softplus(-T) * w).sum() / w.sum().clamp_min(1.0)


def jsd_mixed(
    L: torch.Tensor,
    S: torch.Tensor,
    valid: torch.Tensor | None = None,
    negative_positions: str = "same",
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """A lever beyond the thesis: eq. 4.12 with E_marginal over an equal mixture of two pools, the other positions of
    the same image (`jsd_own_image`) and the same position of the other images of the batch (`jsd_bound`, the thesis).
    Why: each pool alone is met by a shortcut the other one rules out. Given the image, the bound is met by an equal
    split of every image, and a map of position (the same bands in every image) is one (experiments/scale sections
    21-22); against the same position of other images such a map carries nothing. Against other images alone the
    bound is met by labelling whole images (sections 12, 17), which carries nothing given the image. Only a
    partition that differs within an image and between images at the same place scores on both halves. Local
    batch only (no DDP gathering), like own_image. Measured on CamVid (section 23): the bands go, and the classes with
    them, since they too sit at the same place in every frame; rejected on 3 of 3 seeds. On COCO-Persons, whose persons
    stand anywhere, up on 3 of 3 seeds (section 34); down on ccp_persons, whose person stands in the middle."""
    own = jsd_own_image(L, S, valid, critic)
    return mix_pools(own, jsd_bound(L, S, valid, negative_positions=negative_positions, critic=critic))


def jsd_mixed_balanced(
    L: torch.Tensor,
    S: torch.Tensor,
    p: torch.Tensor,
    valid: torch.Tensor | None = None,
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """A lever beyond the thesis: `jsd_mixed` with each half's clusters weighing the same (`balanced_negative_weights`
    over the image's positions for the own-image half, over the batch's images at the position for the other).
    Why: every pool drawn from the data ranks a partition by how rarely a negative shares the anchor's cluster, so
    unequal classes lose to equal splits under own_image, local and mixed alike (misseg/diagnostics/ceiling.py; on
    COCO-Persons by 0.09-0.21 nats, experiments/scale section 35). Balanced within the image, sizes drop out but a map
    of position ties with the classes (section 35's own_image_balanced runs kept their rows); balanced at the position
    over the images, a map repeated in every image finds one cluster there (q = 1) and whole-image labels find them all.
    Together, on the K = 2 sets the classes come within 0.02 of the most the bound gives any partition, and rows and
    whole-image labels sit 0.24 below it (K = 2). Measured (section 35): COCO-Persons up on
    3 of 3 seeds (0.515 against 0.411 with own_image, the clusters above their whole-image filling); down on
    ccp_persons, whose person stands in the middle of most of a batch's 16 photos, so that the per-position half pays
    it as it pays a band, and on Human-Seg, which the ceiling does not explain. Local batch only (no DDP gathering)."""
    own = jsd_own_image(L, S, valid, critic, weights=balanced_negative_weights(p, valid, "image"))
    other = jsd_bound(L, S, valid, critic=critic, weights=balanced_negative_weights(p, valid, "position"))
    return mix_pools(own, other)


def jsd_uniform_heads(
    L: torch.Tensor, S: torch.Tensor, H: torch.Tensor, valid: torch.Tensor | None = None, critic: Critic | None = None
) -> dict[str, torch.Tensor]:
    """A lever beyond the thesis: eq. 4.12 with E_marginal pairing L_ij(x) with each of the image's K high-level
    features H_k, each with weight 1/K, in place of S at other positions or images.
    Why: eq. 4.12 bounds a divergence between the joint p(L, S) and the product of p(L) with the distribution the
    negatives draw S from. Drawn from the data (the thesis, own_image), that is I(L; S) = H(S) - H(S | L), and
    H(S) is largest for equal clusters: over the batch, or given the image for own_image, where CamVid's clusters
    became K near-equal bands of every image (experiments/scale sections 21-24). Drawn uniformly from the K H_k, the
    KL form is I(L; S) + KL(p(S) || 1/K) = log K - H(S | L): the sizes of the clusters drop out, and what is left
    rewards a confident assignment, whatever the sizes. Its degenerate optimum is one cluster for everything, so
    it needs heads that the bound does not place (model/heads=centroids re-seeds an empty class). B x K x UV
    values, the cheapest pool."""
    B, _, U, V = L.shape
    if valid is None:
        valid = torch.ones(B, U, V, dtype=torch.bool, device=L.device)
    T_marginal = scores(L, H)  # (B, K, U, V): <L_ij, H_k> for every k
    return bound_terms((L * S).sum(1), valid, T_marginal, valid[:, None].expand_as(T_marginal), critic)


def mix_pools(own: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`jsd_mixed` from the terms of its two pools (`bound_terms` of each), for callers that have both already."""
    marginal = (own["marginal"] + other["marginal"]) / 2  # the joint term is the same pairs in both
    return {"mi": own["joint"] - marginal, "joint": own["joint"], "marginal": marginal}


def gather_negatives(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """all_gather x (B, ...) over the default process group -> (world * B, ...), offset of this rank's rows.

    Gradient flows through this rank's own slice only (the others are detached copies): each rank
    back-propagates its anchors' loss into its own S, and DDP averages the parameter gradients as usual.
    Every rank must pass the same B (training loaders drop the last incomplete batch). Without an
    initialised process group (one process) it returns x itself, so "global" equals "local" there.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    rank = dist.get_rank()
    parts[rank] = x
    return torch.cat(parts), rank * x.shape[0]


def jsd_with_negatives(
    L: torch.Tensor,
    S: torch.Tensor,
    valid: torch.Tensor | None = None,
    negatives: str = "local",
    negative_positions: str = "same",
    critic: Critic | None = None,
    H: torch.Tensor | None = None,
    p: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """`jsd_bound` with negatives from this process's batch ("local") or from all DDP ranks ("global"), or
    `jsd_own_image` ("own_image": every other position of the same image; no DDP communication), or
    "own_image_balanced": the same with each of the image's clusters weighing the same (`jsd_own_image_balanced`,
    from p (B, K, U, V), the assignment S is built from), or "mixed": half of the negatives' weight on each of
    own_image and local (`jsd_mixed`), or "mixed_balanced": the same with each half's clusters weighing the same
    (`jsd_mixed_balanced`, from p), or "heads": the K high-level features H (B, K, P) that S is built from, 1/K
    each (`jsd_uniform_heads`)."""
    check_option("negatives", negatives, NEGATIVES)
    if negatives == "heads":
        if H is None:
            raise ValueError("negatives='heads' needs the high-level features H that S is built from")
        return jsd_uniform_heads(L, S, H, valid, critic)
    if negatives in ("own_image", "own_image_balanced", "mixed_balanced"):
        check_own_image(negatives, negative_positions)
        if negatives == "own_image":
            return jsd_own_image(L, S, valid, critic)
        if p is None:
            raise ValueError(f"negatives='{negatives}' needs the assignment p' that S is built from")
        balanced = jsd_own_image_balanced if negatives == "own_image_balanced" else jsd_mixed_balanced
        return balanced(L, S, p, valid, critic)
    if negatives == "mixed":
        return jsd_mixed(L, S, valid, negative_positions, critic)
    if negatives == "local":
        return jsd_bound(L, S, valid, negative_positions=negative_positions, critic=critic)
    B, _, U, V = L.shape
    v = torch.ones(B, U, V, dtype=torch.bool, device=L.device) if valid is None else valid
    S_all, offset = gather_negatives(S)
    valid_all, _ = gather_negatives(v)
    return jsd_bound(L, S, v, S_all, valid_all, offset, negative_positions, critic)


def mi_objective(
    L: torch.Tensor,
    H: torch.Tensor,
    tau: float,
    valid: torch.Tensor | None = None,
    detach_assignment: bool = False,
    negatives: str = "local",
    negative_positions: str = "same",
    hard_assignment: bool = False,
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """loss = -JSD bound between L and S = sum_k p' H_k (eq. 4.8, 4.9, 4.12), averaged over valid positions.

    detach_assignment: the thesis does not say whether gradients flow through p'. Default False: the
    bound is differentiated as written (p' depends on L and H). True treats p' as a constant target
    weighting, so only the critic's direct dependence on L and H is trained.
    negatives: "local" = the other images of this process's batch (the thesis, and DDP without any
    communication); "global" = the other images of all DDP ranks' batches (`gather_negatives`); "own_image" = the
    other positions of the same image (`jsd_own_image`), "own_image_balanced" = the same with each cluster of the
    image weighing the same (`jsd_own_image_balanced`); "mixed" = own_image and local, half each (`jsd_mixed`),
    "mixed_balanced" = the same with each half's clusters weighing the same (`jsd_mixed_balanced`);
    "heads" = the K H_k, 1/K each (`jsd_uniform_heads`).
    hard_assignment: S from one_hot(argmax p') with p''s gradient (`straight_through`).
    critic: (a, b) of the critic a <L, S> + b (`bound_terms`).
    """
    p = soft_assignment(L, H, tau)
    S = soft_global(weights_of_S(p, detach_assignment, hard_assignment), H)
    out = jsd_with_negatives(L, S, valid, negatives, negative_positions, critic, H, p)
    out["loss"] = -out["mi"]
    out["p"], out["S"] = p, S
    return out


def centre(H: torch.Tensor) -> torch.Tensor:
    """H_k - (1/K) sum_k' H_k' per image (`MIObjective`'s centre_heads): p' = softmax_k(tau <L, H_k>) is unchanged.
    (B, K, P) -> (B, K, P)"""
    return H - H.mean(1, keepdim=True)


def marginal_entropy(p: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """H(E[p']): entropy of the cluster marginal over the batch's valid positions (IIC's H(z), anti-collapse)."""
    w = torch.ones_like(p[:, :1]) if valid is None else valid[:, None].to(p.dtype)
    marginal = (p * w).sum((0, 2, 3)) / w.sum().clamp_min(1.0)
    return -(marginal * marginal.clamp_min(1e-8).log()).sum()


def in_image_negatives(L: torch.Tensor, H: torch.Tensor, p: torch.Tensor, valid: torch.Tensor | None = None):
    """E[softplus(T(L_ij, H_k'))] over the other classes k' of the same image, weighted by 1 - p'_ijk' (held
    constant), so that each position is scored against the high-level features it is *not* assigned to."""
    K = H.shape[1]
    w = (1 - p.detach()) / max(K - 1, 1)  # (B, K, U, V), sums to 1 over k per position
    if valid is not None:
        w = w * valid[:, None].to(w.dtype)
    return (F.softplus(scores(L, H)) * w).sum() / w.sum().clamp_min(1.0)


def pseudo_label_loss(L: torch.Tensor, H: torch.Tensor, tau: float, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of p' (eq. 4.8's logits tau <L_ij, H_k>, upsampled bilinearly to the targets' size, as the
    prediction is) against hard targets (B, h, w), 255 = none: self-training on labels the method made itself (the
    CRF-refined prediction, misseg.lit.mi.crf_targets). Summed over the labelled pixels and divided by their count,
    so a batch without one gives 0, not NaN. -> scalar"""
    logits = F.interpolate(tau * scores(L, H), size=tuple(targets.shape[-2:]), mode="bilinear", align_corners=False)
    targets = targets.long()
    labelled = (targets != 255).sum().clamp(min=1)
    return F.cross_entropy(logits, targets, ignore_index=255, reduction="sum") / labelled


class MIObjective(nn.Module):
    """The loss of the thesis plus optional levers beyond it (all off by default = paper-faithful):

    entropy_weight: subtract w * H(E[p']) (cluster marginal entropy) from the loss, against collapse.
    in_image_weight: add w * in-image negatives (L_ij vs the H_k' of its own image it is not assigned to).
    Two views (forward's `second`): positives pair L_ij of one view with S_ij of the other view of the same
    image (horizontal flip undone), negatives with S_ij of the other view of every other image;
    symmetrised over the two views.
    negatives: "local" (this process's batch, the thesis), "global" (gathered from all DDP ranks), "own_image"
    (the other positions of the same image: `jsd_own_image`), "mixed" (own_image and local, half each: `jsd_mixed`)
    or "heads" (the K high-level features, 1/K each: `jsd_uniform_heads`).
    negative_positions: "same" (the thesis) or "shuffled" (`jsd_bound`).
    correspondence_weight: subtract w * `correspondence_joint` (positives at the corresponding position of another
    image) from the loss; forward's `reference` gives the features the correspondences are read from (the method
    passes a frozen copy of the encoder at its initial weights). correspondence_partner: the other image is the
    closest one of the batch ("nearest") or a random one ("random": in a video, the closest image is the next
    frame, whose matches are mostly the same position and add little to eq. 4.12's own positives).
    The pixel valid mask is pooled to the feature grid (a patch counts when >= valid_min_fraction is valid).
    views (1 or 2), view_jitter, view_hue: how many views the method feeds (it draws the second one, colour
    jitter of that strength + a random flip, and passes it as forward's `second`); view_vflip: that view is also
    flipped vertically at random; view_hflip=false: no horizontal flip. view_shift (a lever): that view is also
    moved by up to view_shift positions of L's grid each way (a per-image roll of the image by a whole number of
    cells, `roll`); the objective rolls L2 back and scores only the positions whose content did not wrap around
    (`overlap`). Why: a map that follows where a pixel is in the crop (rows, rings around its centre) meets the bound
    given the image as well as the classes do where the classes fill half of it, and a trained body can compute
    one from its zero padding (experiments/scale section 40); moved, the same content sits at another place in the
    crop, and a position code disagrees with its own second view. With view_jitter = view_hue = 0, view_hflip=false
    and view_shift=0 the second view is the first one and the bound is the one-view bound.
    hard_assignment: S is built from one_hot(argmax p'), the prediction, with p''s gradient (`straight_through`).
    critic: "dot" (eq. 4.12's T = <L, S>), "affine" (a lever: T = a <L, S> + b with a = tau exp(s), s and b learned
    scalars starting at 0) or "scaled" (T = tau <L, S>, nothing learned: affine's start, held fixed). Why: the bound
    given the image (negatives="own_image") lives in a narrow range (-2 log 2 for the constant critic to about -0.95
    for a clean in-image split at K = 2), and <L, S> starts far outside it (the bound at step 0 is about -14 at
    P = 256); in the units of the softmax's logits (tau) the critic starts inside that range, and learning a and b
    leaves the sharpness of p' (tau <L, H_k>) free of the critic's scale.
    centre_heads (a lever): every H_k minus the mean over k of the H_k (`centre`) before eq. 4.8-4.12. p' is
    unchanged (the softmax over k ignores a shift common to every k), and with heads shared by every image
    (prototypes, centroids) or negatives="heads" so is every difference T_joint - T_marginal the critic has to tell
    apart; what goes is the score <L_ij, mean_k H_k> that the joint and every marginal pair of L_ij share.
    Why: centroid heads are means of L and carry its mean, so that shared score is large (the bound at -6 to -11,
    the joint term at 0: experiments/scale section 26) and the loss's gradient is mostly "lower <L_ij, mean_k H_k>
    at every position", the same push for every patch, which the affine critic's bias is too slow to absorb.
    Centred, the bound is unchanged by any vector added to every H_k.
    crf_target_weight (a lever): add w * `pseudo_label_loss` of p' against forward's `targets`, the method's own
    prediction refined by the dense CRF (no labels). Why: a trained body learns the split the clusters make, and only
    where they are right (experiments/scale section 42: the probe's gain lies on the pixels the clusters get right);
    the CRF moves the clusters' edges to the image's, so the body is asked for a split closer to the objects'.
    crf_target_start: the optimizer step (Lightning's global_step, the step checkpoints' numbering) from which the
    targets come (`crf_target_on`; 0 = from the first; forward's `step`). Why: a
    target is as good as the split it refines, and the first steps' clusters can be rows that the CRF then confirms
    (section 43: on ccp_persons one seed of three locked onto rows by step 150 under the target, none without it).
    """

    def __init__(
        self,
        tau: float,
        detach_assignment: bool = False,
        valid_min_fraction: float = 0.5,
        entropy_weight: float = 0.0,
        in_image_weight: float = 0.0,
        negatives: str = "local",
        views: int = 1,
        view_jitter: float = 0.4,
        view_hue: float = 0.1,
        negative_positions: str = "same",
        correspondence_weight: float = 0.0,
        correspondence_partner: str = "nearest",
        view_vflip: bool = False,
        view_hflip: bool = True,
        view_shift: int = 0,
        hard_assignment: bool = False,
        critic: str = "dot",
        centre_heads: bool = False,
        crf_target_weight: float = 0.0,
        crf_target_start: int = 0,
    ) -> None:
        super().__init__()
        check_option("negatives", negatives, NEGATIVES)  # at construction: a bad value fails before training
        check_option("negative_positions", negative_positions, NEGATIVE_POSITIONS)
        check_own_image(negatives, negative_positions)
        check_option("correspondence_partner", correspondence_partner, CORRESPONDENCE_PARTNERS)
        check_option("critic", critic, CRITICS)
        self.critic = critic
        if critic == "affine":  # parameters only under the lever, so the thesis's checkpoints keep their keys
            self.critic_log_scale = nn.Parameter(torch.zeros(()))
            self.critic_bias = nn.Parameter(torch.zeros(()))
        self.correspondence_partner = correspondence_partner
        self.negative_positions = negative_positions
        self.negatives, self.views, self.view_jitter, self.view_hue = negatives, views, view_jitter, view_hue
        self.tau, self.detach_assignment, self.valid_min_fraction = tau, detach_assignment, valid_min_fraction
        self.entropy_weight, self.in_image_weight = entropy_weight, in_image_weight
        self.correspondence_weight, self.view_vflip = correspondence_weight, view_vflip
        if int(view_shift) != view_shift or view_shift < 0:
            raise ValueError(f"model.objective.view_shift={view_shift}: a number of L's cells >= 0 (0 = off), e.g. 4")
        self.view_hflip, self.view_shift = view_hflip, int(view_shift)
        self.hard_assignment, self.centre_heads = hard_assignment, centre_heads
        if not crf_target_weight >= 0:
            raise ValueError(f"model.objective.crf_target_weight={crf_target_weight}: a weight >= 0 (0 = off)")
        self.crf_target_weight = crf_target_weight
        if int(crf_target_start) != crf_target_start or crf_target_start < 0:
            raise ValueError(f"model.objective.crf_target_start={crf_target_start}: an optimizer step >= 0, e.g. 150")
        self.crf_target_start = int(crf_target_start)

    def crf_target_on(self, step: int) -> bool:
        """Whether the optimizer step `step` (0-based) takes the CRF target (crf_target_weight, crf_target_start)."""
        return bool(self.crf_target_weight) and step >= self.crf_target_start

    def critic_ab(self) -> Critic | None:
        """(a, b) of the critic T = a <L, S> + b: None for "dot" (the thesis's <L, S>), (tau, 0) for "scaled",
        (tau exp(s), b) for "affine"."""
        if self.critic == "dot":
            return None
        if self.critic == "scaled":
            return self.tau, 0.0
        return self.tau * self.critic_log_scale.exp(), self.critic_bias

    def scored_heads(self, H: torch.Tensor) -> torch.Tensor:
        """The H_k that eq. 4.8-4.12 score: centred over k under centre_heads, H itself otherwise. `forward` and every
        reader of a trained run's bound (experiments/scale/pools.py) go through here, so that a reader cannot score
        heads the run never trained (pools.py once scored a centred run's raw H_k: -6.4 nats against its -1.3)."""
        return centre(H) if self.centre_heads else H

    def forward(
        self,
        L: torch.Tensor,
        H: torch.Tensor,
        valid_pixels: torch.Tensor | None = None,
        second: tuple[torch.Tensor, ...] | None = None,
        reference: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """second: (L2, H2, flipped) of a second augmented view of the same images, or (L2, H2, flipped, shift) for
        a view also moved by `roll(., shift)` after its flip (shift: (B, 2) cells of L's grid), or None.
        reference: (B, Q, U, V) features of the first view to read correspondences from (correspondence_weight).
        targets: (B, h, w) labels for p' of the first view, 255 = none (crf_target_weight; None before
        crf_target_start, where the term is left out); step: the optimizer step, which says whether the term is on
        (None: as at crf_target_start, so a caller that passes neither gets the missing-targets error)."""
        valid = None
        if valid_pixels is not None:
            valid = pool_valid(valid_pixels, tuple(L.shape[-2:]), self.valid_min_fraction)
        critic = self.critic_ab()
        H = self.scored_heads(H)
        valid2 = valid  # the positions both views score: the shifted view's wrapped-around content is not one
        if second is not None:
            L2, H2, flipped, *moved = second
            if moved:  # undo the shift first: it was applied after the flip (p', S are per-position: they commute)
                L2 = roll(L2, -moved[0])
                seen = unflip(overlap(moved[0], *L.shape[-2:]), flipped)
                valid2 = seen if valid is None else valid & seen
            second = (L2, self.scored_heads(H2), flipped)
        if second is None:
            out = mi_objective(
                L,
                H,
                self.tau,
                valid,
                detach_assignment=self.detach_assignment,
                negatives=self.negatives,
                negative_positions=self.negative_positions,
                hard_assignment=self.hard_assignment,
                critic=critic,
            )
            ps, pairs, S = [out["p"]], [(L, H, out["p"])], out.pop("S")
        else:
            L2, H2, flipped = second
            p1, p2 = soft_assignment(L, H, self.tau), soft_assignment(L2, H2, self.tau)
            S1 = soft_global(weights_of_S(p1, self.detach_assignment, self.hard_assignment), H)
            S2 = soft_global(weights_of_S(p2, self.detach_assignment, self.hard_assignment), H2)
            a = jsd_with_negatives(
                L, unflip(S2, flipped), valid2, self.negatives, self.negative_positions, critic, H2, unflip(p2, flipped)
            )
            b = jsd_with_negatives(
                unflip(L2, flipped), S1, valid2, self.negatives, self.negative_positions, critic, H, p1
            )
            out = {key: (a[key] + b[key]) / 2 for key in a}
            out["loss"], out["p"], S = -out["mi"], p1, S1
            ps, pairs = (
                [p1, unflip(p2, flipped)],
                [(L, H, p1), (unflip(L2, flipped), H2, unflip(p2, flipped))],
            )
        if self.critic == "affine":  # logged, so a run shows where the learned critic went
            out["critic_a"], out["critic_b"] = critic[0].detach(), critic[1].detach()
        if self.entropy_weight:
            out["entropy"] = sum(marginal_entropy(p, valid) for p in ps) / len(ps)
            out["loss"] = out["loss"] - self.entropy_weight * out["entropy"]
        if self.correspondence_weight:
            if reference is None:
                raise ValueError("correspondence_weight > 0 needs the reference features (forward's `reference`)")
            random = self.correspondence_partner == "random"
            partner = random_partners(L.shape[0], L.device) if random else None
            partner, match = correspondences(reference, valid, partner)
            out["correspondence"] = correspondence_joint(L, S, partner, match, valid, critic)
            out["loss"] = out["loss"] - self.correspondence_weight * out["correspondence"]
        if self.crf_target_on(self.crf_target_start if step is None else step):
            if targets is None:
                raise ValueError("crf_target_weight > 0 needs the targets (forward's `targets`)")
            out["crf_target"] = pseudo_label_loss(L, H, self.tau, targets)
            out["loss"] = out["loss"] + self.crf_target_weight * out["crf_target"]
        if self.in_image_weight:
            out["in_image"] = sum(in_image_negatives(Lx, Hx, px, valid) for Lx, Hx, px in pairs) / len(pairs)
            out["loss"] = out["loss"] + self.in_image_weight * out["in_image"]
        return out
