"""Where does the class split sit in L's spectrum? A diagnostic for K = 2 clustering.

Any clustering that cuts L in two (K-means, the MI heads, IIC) tends to follow its largest, most confident
direction. If the classes are linearly in L (a good linear probe) but along a *later* principal direction, a K = 2
clustering cuts the other way however good L is, and one cluster more (K = 3, many-to-one matching) can isolate
them. These functions measure that on the L of a whole set: for each top principal component of the patches, its
share of the variance, how much of it is position (the mean over images at each grid cell) or image identity (the
mean over an image's patches), and the mIoU of the 2-way split by the sign of the projection (Hungarian on the
whole set, as for every method). Labels enter only the scores, never the components. Pure tensor code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from misseg.metrics.matching import confusion_matrix, match_and_score


def patch_labels(masks: torch.Tensor, size: tuple[int, int], num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """Pixel masks (B, H, W) -> the majority class of each patch of L's (U, V) grid, ignore_index where half or
    more of the patch is ignored (adaptive average pooling of the one-hot masks)."""
    m = torch.where(masks == ignore_index, num_classes, masks.long())
    shares = F.adaptive_avg_pool2d(F.one_hot(m, num_classes + 1).permute(0, 3, 1, 2).float(), size)
    return torch.where(shares[:, num_classes] >= 0.5, ignore_index, shares[:, :num_classes].argmax(1))


def split_miou(split: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """mIoU of a 2-way split (bool, any shape) against labels of the same shape, Hungarian-matched."""
    return match_and_score(confusion_matrix(split.long(), labels, 2, num_classes, ignore_index))["miou"]


@torch.no_grad()
def principal_splits(
    L: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    num_pcs: int = 8,
    max_samples: int = 50_000,
    seed: int = 0,
    ignore_index: int = 255,
) -> dict:
    """L (B, P, U, V) float, labels (B, U, V) (patch_labels) -> per top principal component i of the B*U*V
    patches (fitted on up to max_samples of them, seeded): variance[i] (share of L's total variance),
    position[i] and image[i] (shares of that PC's variance explained by the mean over images at each grid cell,
    and by the mean over each image's patches), sign_split[i] (mIoU of splitting all patches by the sign of the
    centred projection). With 2 classes also class_cosine[i]: |cos| between PC i and the class-mean difference
    (a label-based direction, the simplest linear probe), and class_split: that direction's own split at the
    midpoint of the two class means."""
    B, P, U, V = L.shape
    X = L.permute(0, 2, 3, 1).reshape(-1, P).double()
    mean = X.mean(0)
    Xc = X - mean
    g = torch.Generator().manual_seed(seed)
    sample = Xc[torch.randperm(len(Xc), generator=g)[:max_samples]]
    _, S, Vt = torch.linalg.svd(sample, full_matrices=False)
    n = min(num_pcs, len(S))
    pcs = Vt[:n]
    total = Xc.pow(2).sum(1).mean()
    z = (Xc @ pcs.T).reshape(B, U, V, n)  # projections, centred over the set
    var = z.pow(2).mean((0, 1, 2))
    flat = labels.reshape(-1)
    out = {
        "variance": (var / total).tolist(),
        "position": (z.mean(0).pow(2).mean((0, 1)) / var).tolist(),
        "image": (z.mean((1, 2)).pow(2).mean(0) / var).tolist(),
        "sign_split": [split_miou(z[..., i].reshape(-1) > 0, flat, num_classes, ignore_index) for i in range(n)],
    }
    if num_classes == 2:
        keep = flat != ignore_index
        m1, m0 = X[keep & (flat == 1)].mean(0), X[keep & (flat == 0)].mean(0)
        w = (m1 - m0) / (m1 - m0).norm()
        out["class_cosine"] = (pcs @ w).abs().tolist()
        out["class_split"] = split_miou(X @ w > (m1 + m0) @ w / 2, flat, num_classes, ignore_index)
    return out
