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
The merge is label-free: average-linkage agglomeration of the centres H_k (`merge_centres`), recomputed after every
K-means step (broadcast centres: every process agrees), so it follows the centres.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

# the positions the loss reads are the positions the centres read: one rule for pooling the valid mask to L's grid
from misseg.objectives.mi import pool_valid


class KMeansStep(NamedTuple):
    """What one `kmeans_step` did: K-means's convergence reading and its count of thrown-away centres."""

    shift: torch.Tensor  # mean over k of |H_k after - H_k before| / sqrt(P), in units of |H_k|
    reseeds: torch.Tensor  # how many classes moved to a random position (int64 scalar)


class CentroidHeads(nn.Module):
    """L (B, P, U, V) -> H (B, K, P): the K layer-normalised centres, the same for every image (buffers, not
    parameters: `kmeans_step` moves them, the optimiser does not)."""

    def __init__(self, K: int, P: int, momentum: float = 0.9, reseed_after: int = 1, overcluster: int = 1) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum} must be in [0, 1)")
        if reseed_after < 1:
            raise ValueError(f"reseed_after={reseed_after} must be >= 1")
        if overcluster < 1:
            raise ValueError(f"overcluster={overcluster} must be >= 1")
        self.K, self.P, self.region, self.momentum, self.reseed_after = K, P, False, momentum, reseed_after
        self.centres = K * overcluster  # the rows of H the bound sees; K classes are predicted
        self.register_buffer("centroids", torch.zeros(self.centres, P))
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))
        self.register_buffer("idle", torch.zeros(self.centres, dtype=torch.long))  # batches in a row nothing chose k
        if overcluster > 1:  # only then, so the checkpoints of K centres keep their keys
            self.register_buffer("groups", torch.arange(self.centres) % K)  # the class of each centre

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # checkpoints from before `idle` existed (BatchNorm's rule for num_batches_tracked): no class has been idle
        state_dict.setdefault(prefix + "idle", torch.zeros(self.centres, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        H = F.layer_norm(self.centroids, (self.P,))
        return H.to(L.dtype).expand(L.shape[0], self.centres, self.P)

    @torch.no_grad()
    def kmeans_step(self, L: torch.Tensor, valid: torch.Tensor | None = None) -> KMeansStep | None:
        """One online K-means step on the batch's L (B, P, U, V); valid (B, H, W) bool at image resolution or None.

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
        k = (x @ before.T).argmax(1)
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
        self._sync()
        self._merge()
        shift = (F.layer_norm(self.centroids, (P,)) - before).norm(dim=1).mean() / P**0.5
        return KMeansStep(shift, reseed.sum())

    def _merge(self) -> None:
        if hasattr(self, "groups"):
            self.groups.copy_(merge_centres(F.layer_norm(self.centroids, (self.P,)), self.K))

    def _sync(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.centroids, 0)


def merge_centres(H: torch.Tensor, K: int) -> torch.Tensor:
    """Average linkage: H (C, P) centres -> the class of each centre (C,) long in [0, K), classes numbered by their
    first centre. Merges, C - K times, the two groups whose centres are closest on average (cosine distance, each
    centre counting once; Lance-Williams update). Why not Ward's size-weighted rule: it keeps large clusters apart,
    the equal-size bias of K-means that cut road (section 54), where this rule reads only where the centres lie.
    Labels are not read."""
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
