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

    def __init__(self, K: int, P: int, momentum: float = 0.9, reseed_after: int = 1) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum} must be in [0, 1)")
        if reseed_after < 1:
            raise ValueError(f"reseed_after={reseed_after} must be >= 1")
        self.K, self.P, self.region, self.momentum, self.reseed_after = K, P, False, momentum, reseed_after
        self.register_buffer("centroids", torch.zeros(K, P))
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))
        self.register_buffer("idle", torch.zeros(K, dtype=torch.long))  # batches in a row no position chose class k

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # checkpoints from before `idle` existed (BatchNorm's rule for num_batches_tracked): no class has been idle
        state_dict.setdefault(prefix + "idle", torch.zeros(self.K, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        H = F.layer_norm(self.centroids, (self.P,))
        return H.to(L.dtype).expand(L.shape[0], self.K, self.P)

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
            if len(x):  # distinct positions while the batch has K of them (a tiny batch repeats some)
                pick = torch.randperm(len(x), device=x.device)[: self.K]
                self.centroids.copy_(x[pick[torch.arange(self.K, device=x.device) % len(pick)]])
            self.seeded.fill_(True)
            self._sync()
            return None
        before = F.layer_norm(self.centroids, (P,))  # H now: the assignment reads it, the shift starts from it
        k = (x @ before.T).argmax(1)
        counts = torch.bincount(k, minlength=self.K).to(x.dtype)
        sums = torch.zeros(self.K, P, dtype=x.dtype, device=x.device).index_add_(0, k, x)
        if distributed:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        moved = self.momentum * self.centroids + (1 - self.momentum) * sums / counts.clamp(min=1)[:, None]
        reseeded = x[torch.randint(len(x), (self.K,), device=x.device)] if len(x) else self.centroids
        self.idle.copy_(torch.where(counts > 0, 0, self.idle + 1))
        reseed = self.idle >= self.reseed_after
        kept = torch.where(reseed[:, None], reseeded, self.centroids)  # an absent class waits where it is
        self.centroids.copy_(torch.where((counts > 0)[:, None], moved, kept))
        self.idle.masked_fill_(reseed, 0)
        self._sync()
        shift = (F.layer_norm(self.centroids, (P,)) - before).norm(dim=1).mean() / P**0.5
        return KMeansStep(shift, reseed.sum())

    def _sync(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.centroids, 0)
