"""Centroid heads (a lever beyond the thesis, `model/heads=centroids`): H_k is the running mean of the L_ij that
the prediction assigns to class k over the training images (online K-means on L), not a learned parameter.

Why (experiments/scale sections 21-23): on CamVid the bound places learned prototypes where they cut every image
into K near-equal parts (horizontal bands, 0.137 mIoU), while K-means on the same L reads its content (0.190,
above IIC). Here the bound does not place the H_k: it shapes L only (through p' and S) around centres that the
content of L places, and the prediction argmax_k p' is the nearest centre, the rule K-means on L predicts with.

Update, after each training step and without gradient (VQ-VAE's EMA codebook, K-means's empty-cluster rule):
k_ij = argmax_k <L_ij, H_k> over the batch's valid positions; m_k = mean of the L_ij with k_ij = k;
c_k <- momentum c_k + (1 - momentum) m_k; a class no position chose in `reseed_after` batches in a row moves to a
random position of the batch (until then its centre stays where it is). With reseed_after = 1 (the default) an absent
class moves at once; a class whose content lives in few images is then thrown away whenever a batch lacks it
(experiments/scale section 46: COCO-Stuff-15's rarer classes are in 6-11% of the images, absent from a sixth to a
third of the batches of 16). The first batch seeds the K centres at distinct random positions (before it, H = 0 and
p' is uniform, so the first step moves nothing). H_k = LayerNorm(c_k) without gain or bias: |H_k| = sqrt(P) as the
thesis's heads (their F_k end in a LayerNorm), so tau = 1/sqrt(P) keeps its meaning and every class has the same norm.
Under DDP the batch statistics are summed over the processes and rank 0's centres are broadcast (a re-seeding draw
is rank 0's), so every process holds the same H.

Over-clustering (`overcluster` = m > 1, off by default): m K centres, each a cluster of the bound's p' (the objective
sees m K rows of H), and the prediction merges them into K classes: p_c = sum of p'_k over the centres of class c.
Why (experiments/scale section 54): K equal clusters cut CamVid's road (30% of the pixels) into two or three parts,
as K-means on L does; a large, varied class can hold several centres only if there are more centres than classes.
The merge is label-free and recomputed after every K-means step (every process agrees), by one of two rules:
- `merge="coassignment"` (default): agglomerate the centres that share the training positions' soft assignment,
  A_kl = E[p'_k p'_l] (an exponential running mean over the batches with `merge_momentum`, default `momentum`:
  about ten batches; a re-seeded centre's row and column restart from zero; `coassignment_groups`). Two centres that
  split one region of L between them (road near and far) share its positions' p'; two classes apart in L share few.
  (Section 55, CamVid, m = 3: up on two fresh seeds of three against K centres, five of six in all; not kept.
  Section 56: `merge_momentum` = 0.99, about a hundred batches: kept on CamVid. Section 57: rejected on
  COCO-Stuff-15's kept setting, where the merge loses what the centres hold; section 58: the frozen body's
  correspondences across images, read after training alone or with A, merge those centres no better.)
- `merge="centres"`: average linkage of the centres H_k by their cosine distance (`merge_centres`), where they lie
  and not how the positions fall between them (section 55: below K centres on one seed of three, rejected).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from misseg.models import MERGES

# the positions the loss reads are the positions the centres read: one rule for pooling the valid mask to L's grid
from misseg.objectives.mi import pool_valid


class KMeansStep(NamedTuple):
    """What one `kmeans_step` did: K-means's convergence reading and its count of thrown-away centres."""

    shift: torch.Tensor  # mean over k of |H_k after - H_k before| / sqrt(P), in units of |H_k|
    reseeds: torch.Tensor  # how many classes moved to a random position (int64 scalar)


class CentroidHeads(nn.Module):
    """L (B, P, U, V) -> H (B, K, P): the K layer-normalised centres, the same for every image (buffers, not
    parameters: `kmeans_step` moves them, the optimiser does not)."""

    def __init__(
        self,
        K: int,
        P: int,
        momentum: float = 0.9,
        reseed_after: int = 1,
        overcluster: int = 1,
        merge: str = "coassignment",
        merge_momentum: float | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum} must be in [0, 1)")
        if reseed_after < 1:
            raise ValueError(f"reseed_after={reseed_after} must be >= 1")
        if overcluster < 1:
            raise ValueError(f"overcluster={overcluster} must be >= 1")
        if merge not in MERGES:
            raise ValueError(f"merge={merge!r}: use one of {MERGES}")
        if merge_momentum is not None and not 0.0 <= merge_momentum < 1.0:
            raise ValueError(f"merge_momentum={merge_momentum} must be in [0, 1) or None (= momentum)")
        self.K, self.P, self.region, self.momentum, self.reseed_after = K, P, False, momentum, reseed_after
        self.centres, self.merge = K * overcluster, merge  # the rows of H the bound sees; K classes are predicted
        self.merge_momentum = momentum if merge_momentum is None else merge_momentum  # the co-assignment's EMA
        self.register_buffer("centroids", torch.zeros(self.centres, P))
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))
        self.register_buffer("idle", torch.zeros(self.centres, dtype=torch.long))  # batches in a row nothing chose k
        if overcluster > 1:  # only then, so the checkpoints of K centres keep their keys
            self.register_buffer("groups", torch.arange(self.centres) % K)  # the class of each centre
            self.register_buffer("coassignment", torch.zeros(self.centres, self.centres))  # running E[p'_k p'_l]

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # checkpoints from before `idle` existed (BatchNorm's rule for num_batches_tracked): no class has been idle
        state_dict.setdefault(prefix + "idle", torch.zeros(self.centres, dtype=torch.long))
        if hasattr(self, "coassignment"):  # over-clustered checkpoints from before the co-assignment merge: their
            # groups (average linkage) load as they were; the statistic starts empty
            state_dict.setdefault(prefix + "coassignment", torch.zeros(self.centres, self.centres))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        H = F.layer_norm(self.centroids, (self.P,))
        return H.to(L.dtype).expand(L.shape[0], self.centres, self.P)

    @torch.no_grad()
    def kmeans_step(
        self, L: torch.Tensor, valid: torch.Tensor | None = None, tau: float | None = None
    ) -> KMeansStep | None:
        """One online K-means step on the batch's L (B, P, U, V); valid (B, H, W) bool at image resolution or None;
        tau: p''s (None = 1/sqrt(P)), read by the co-assignment merge only.

        Returns the step's shift, K-means's own convergence reading (the mean over k of |H_k after - H_k before| /
        sqrt(P), in units of |H_k|; a re-seeded class counts its whole jump), and its number of re-seeds; None where
        nothing was learned (no valid position) or the step seeded the centres."""
        B, P, U, V = L.shape
        x = L.detach().float().permute(0, 2, 3, 1).reshape(-1, P)
        if valid is not None:
            x = x[pool_valid(valid, (U, V)).flatten()]
        distributed = dist.is_available() and dist.is_initialized()
        if len(x) == 0 and not distributed:  # no valid position (e.g. all COCO-Stuff things): nothing to learn from
            return None
        # under DDP a rank with no valid position still takes part in the collectives below (rank 0's draw wins)
        if not self.seeded:
            if len(x):  # distinct positions while the batch has as many (a tiny batch repeats some)
                pick = torch.randperm(len(x), device=x.device)[: self.centres]
                self.centroids.copy_(x[pick[torch.arange(self.centres, device=x.device) % len(pick)]])
            self.seeded.fill_(True)
            self._sync()
            self._merge()
            return None
        before = F.layer_norm(self.centroids, (P,))  # H now: the assignment reads it, the shift starts from it
        score = x @ before.T
        k = score.argmax(1)
        if hasattr(self, "groups"):
            self._coassign(score, P**-0.5 if tau is None else tau, distributed)
        counts = torch.bincount(k, minlength=self.centres).to(x.dtype)
        sums = torch.zeros(self.centres, P, dtype=x.dtype, device=x.device).index_add_(0, k, x)
        if distributed:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        moved = self.momentum * self.centroids + (1 - self.momentum) * sums / counts.clamp(min=1)[:, None]
        reseeded = x[torch.randint(len(x), (self.centres,), device=x.device)] if len(x) else self.centroids
        self.idle.copy_(torch.where(counts > 0, 0, self.idle + 1))
        reseed = self.idle >= self.reseed_after
        kept = torch.where(reseed[:, None], reseeded, self.centroids)  # an absent class waits where it is
        self.centroids.copy_(torch.where((counts > 0)[:, None], moved, kept))
        self.idle.masked_fill_(reseed, 0)
        if hasattr(self, "coassignment"):  # a re-seeded centre is a new cluster: its old co-assignment is not its own
            # (A_kl / (n_k n_l) stays unbiased while its row refills: row and n grow by the same factor)
            self.coassignment.masked_fill_(reseed[:, None] | reseed[None, :], 0)
        self._sync()
        self._merge()
        shift = (F.layer_norm(self.centroids, (P,)) - before).norm(dim=1).mean() / P**0.5
        return KMeansStep(shift, reseed.sum())

    def _coassign(self, score: torch.Tensor, tau: float, distributed: bool) -> None:
        """The batch's E[p'_k p'_l] over its valid positions (eq. 4.8's p' from the centres before the step) into
        the running mean; summed over the processes under DDP."""
        p = torch.softmax(tau * score, dim=1)
        batch = torch.cat([(p.T @ p).flatten(), p.new_tensor([len(p)])])
        if distributed:
            dist.all_reduce(batch)
        if batch[-1] > 0:
            mean = batch[:-1].view_as(self.coassignment) / batch[-1]
            self.coassignment.mul_(self.merge_momentum).add_((1 - self.merge_momentum) * mean)

    def _merge(self) -> None:
        if not hasattr(self, "groups"):
            return
        if self.merge == "centres":
            self.groups.copy_(merge_centres(F.layer_norm(self.centroids, (self.P,)), self.K))
        elif self.coassignment.any():  # before the first step no position has been assigned: groups stay as drawn
            self.groups.copy_(coassignment_groups(self.coassignment, self.K))

    def _sync(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.centroids, 0)


def coassignment_groups(A: torch.Tensor, K: int) -> torch.Tensor:
    """Average association: A (C, C) = E[p'_k p'_l] -> the class of each centre (C,) long in [0, K), classes
    numbered by their first centre. Merges, C - K times, the two groups a, b with the largest A_ab / (n_a n_b), where
    n_a = sum_l A_al = E[p'_a] is a group's share of the positions and A of a union is the sum of its rows: how much
    more often than chance the positions hold both. A region of L that two centres split carries both in its p';
    two classes apart in L do not, whatever their sizes. Labels are not read."""
    C = len(A)
    A = A.double().clone()
    n = A.sum(1).clamp_min(1e-300)
    live = ~torch.eye(C, dtype=torch.bool, device=A.device)  # the pairs of live groups
    groups = torch.arange(C, device=A.device)
    for _ in range(C - K):  # C - K merges of a C x C matrix, once a step: no loop over positions
        a, b = sorted(divmod(int((A / (n[:, None] * n[None, :])).masked_fill(~live, -1).argmax()), C))
        A[a] += A[b]
        A[:, a] += A[:, b]
        n[a] += n[b]
        live[b, :] = live[:, b] = False
        groups[groups == b] = a
    return torch.unique(groups, return_inverse=True)[1]


def merge_centres(H: torch.Tensor, K: int) -> torch.Tensor:
    """Average linkage: H (C, P) centres -> the class of each centre (C,) long in [0, K), classes numbered by their
    first centre. Merges, C - K times, the two groups whose centres are closest on average (cosine distance, each
    centre counting once; Lance-Williams update). Why not Ward's size-weighted rule: it keeps large clusters apart,
    the equal-size bias of K-means that cut road (section 54), where this rule reads only where the centres lie.
    Labels are not read. `CentroidHeads(merge="centres")`."""
    C = len(H)
    Hn = F.normalize(H.double(), dim=1)
    D = (1 - Hn @ Hn.T).fill_diagonal_(float("inf"))  # distance between groups; inf: the same or a merged group
    n = torch.ones(C, dtype=torch.float64, device=H.device)  # centres in each group
    groups = torch.arange(C, device=H.device)
    for _ in range(C - K):  # C - K merges of a C x C matrix, once a step: no loop over positions
        a, b = sorted(divmod(int(D.argmin()), C))
        D[a] = (n[a] * D[a] + n[b] * D[b]) / (n[a] + n[b])  # mean distance of the union to every other group
        D[:, a] = D[a]
        D[a, a] = D[b, :] = D[:, b] = float("inf")
        n[a] += n[b]
        groups[groups == b] = a
    return torch.unique(groups, return_inverse=True)[1]


def merge_probs(p: torch.Tensor, groups: torch.Tensor, K: int) -> torch.Tensor:
    """p' over C centres (B, C, U, V) -> over K classes (B, K, U, V): p_c = sum of p'_k over the centres of class c.
    A matrix product with the one-hot of `groups`, so it exports to ONNX as one MatMul."""
    return torch.einsum("bcuv,ck->bkuv", p, F.one_hot(groups, K).to(p.dtype))
