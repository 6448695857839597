"""Does the MI objective need the segmentation? Ablations of p' inside the JSD bound (eq. 4.12).

The bound scores L_ij(x) against S_ij(x) = sum_k p'_ijk H_k(x) (eq. 4.9). Because H_k(x) is computed from the
image itself, S can tell x from x' through H alone: if every H_k(x) carries a code of the image, the bound is
met whatever p' is, and p' (the prediction) gets no pressure to follow regions. These functions measure that
on a batch: the bound with the model's p', with p' uniform over k (S = mean_k H_k: no segmentation at all),
and with another image's p' (the right H, the wrong segmentation). Pure tensor code: no data or Lightning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from misseg.objectives.mi import jsd_bound, soft_assignment, soft_global


@torch.no_grad()
def assignment_ablation(
    L: torch.Tensor, H: torch.Tensor, tau: float, valid: torch.Tensor | None = None
) -> dict[str, float]:
    """L (B, P, U, V), H (B, K, P), valid (B, U, V) or None -> the bound under three p', and how H is spread.

    bound: the JSD bound with the model's p'. uniform: with p' = 1/K (S_ij = mean_k H_k for every position).
    other_image: with p' of image b+1 (mod B) for image b. share_uniform = uniform / bound: near 1 means the
    bound does not need the segmentation. H_between_k: the share of H's variance that lies between the K
    features of one image (the rest lies between images); near 0 means the H_k of an image are one vector.
    confidence: mean max_k p'; usage_entropy: entropy of the batch's cluster usage / log K (1 = balanced).
    """
    B, K, _ = H.shape
    p = soft_assignment(L, H, tau)
    bound = jsd_bound(L, soft_global(p, H), valid)["mi"]
    S_uniform = H.mean(1)[:, :, None, None].expand_as(L)
    uniform = jsd_bound(L, S_uniform, valid)["mi"]
    other = jsd_bound(L, soft_global(p.roll(1, dims=0), H), valid)["mi"]
    within = H.var(1, unbiased=False).sum(1).mean()  # variance over k inside each image, summed over P
    total = H.reshape(B * K, -1).var(0, unbiased=False).sum()
    usage = p.mean((0, 2, 3))
    usage_entropy = -(usage * usage.clamp_min(1e-12).log()).sum() / torch.log(torch.tensor(float(max(K, 2))))
    return {
        "bound": float(bound),
        "uniform": float(uniform),
        "other_image": float(other),
        "share_uniform": float(uniform / bound) if float(bound) != 0 else float("nan"),
        "H_between_k": float(within / total.clamp_min(1e-12)),
        "confidence": float(p.max(1).values.mean()),
        "usage_entropy": float(usage_entropy),
    }


def normalized_mutual_information(a: torch.Tensor, b: torch.Tensor) -> float:
    """NMI (arithmetic-mean normalisation) of two integer labellings of the same pixels; 1 = the same partition
    up to renaming, 0 = independent. Pixels where either label is negative are left out."""
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep].long(), b[keep].long()
    _, a = a.unique(return_inverse=True)
    _, b = b.unique(return_inverse=True)
    joint = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    joint.index_put_((a, b), torch.ones_like(a, dtype=torch.float64), accumulate=True)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = (joint[nz] * (joint[nz] / (pa[:, None] * pb[None, :])[nz]).log()).sum()
    ha, hb = -(pa * pa.clamp_min(1e-300).log()).sum(), -(pb * pb.clamp_min(1e-300).log()).sum()
    return float(2 * mi / (ha + hb)) if float(ha + hb) > 0 else 1.0


def conditional_nmi(a: torch.Tensor, b: torch.Tensor, given: torch.Tensor) -> float:
    """NMI of two labellings of the same pixels given a third: I(A; B | R) / mean(H(A | R), H(B | R)), each term the
    average over R's values of the usual one. With R = the pixel's row, two clusterings that are the same bands in every
    image score 0 (nothing agrees beyond the row), two that cut every row alike score 1. Pixels where any label is
    negative are left out; 0 where neither labelling varies within R's values."""
    keep = (a >= 0) & (b >= 0) & (given >= 0)
    a, b, r = (t[keep].long().unique(return_inverse=True)[1] for t in (a, b, given))
    shape = (int(r.max()) + 1, int(a.max()) + 1, int(b.max()) + 1)
    joint = torch.zeros(shape, dtype=torch.float64)  # p(r, a, b)
    joint.index_put_((r, a, b), torch.ones_like(a, dtype=torch.float64), accumulate=True)
    joint /= joint.sum()
    pr, pra, prb = joint.sum((1, 2)), joint.sum(2), joint.sum(1)

    def xlogy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:  # p log q, 0 where p = 0
        return torch.where(p > 0, p * q.clamp_min(1e-300).log(), torch.zeros_like(p))

    mi = xlogy(joint, joint * pr[:, None, None] / (pra[:, :, None] * prb[:, None, :]).clamp_min(1e-300)).sum()
    ha = -xlogy(pra, pra / pr[:, None].clamp_min(1e-300)).sum()
    hb = -xlogy(prb, prb / pr[:, None].clamp_min(1e-300)).sum()
    return float(2 * mi / (ha + hb)) if float(ha + hb) > 1e-12 else 0.0


def normalized_entropy(labels: torch.Tensor, K: int) -> float:
    """Entropy of the label histogram / log K (1 = every label equally often); negative labels left out."""
    return histogram_entropy(torch.bincount(labels[labels >= 0].flatten(), minlength=K), K)


def histogram_entropy(counts: torch.Tensor, K: int) -> float:
    """Entropy of a histogram (counts or fractions) / log K (K < 2 read as 2: one label has entropy 0)."""
    q = counts.double() / counts.sum()
    return float(-(q * q.clamp_min(1e-300).log()).sum() / torch.log(torch.tensor(float(max(K, 2)))))


def seeded_index_batches(n: int, batch_size: int = 16, seed: int = 0) -> list[torch.Tensor]:
    """The indices of `seeded_batches`' batches over n items: a seeded random order, `batch_size` at a time, a last
    batch of one item left out (the bound takes its negatives from the other images)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [idx for idx in order.split(batch_size) if len(idx) > 1]


def seeded_batches(dataset: Any, batch_size: int = 16, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, masks) of a dataset of {"image", "mask"} items, in a seeded random order, `batch_size` at a time; a
    last batch of one image is left out (the bound takes its negatives from the other images). Random, because
    neighbouring files (video frames) would be near-identical negatives."""
    for idx in seeded_index_batches(len(dataset), batch_size, seed):
        items = [dataset[int(i)] for i in idx]
        yield torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])
