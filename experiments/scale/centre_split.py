"""Over-clustered centroid heads: do the centres or their merge lose the classes? (section 55)

Usage: python experiments/scale/centre_split.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint)
A run with `model.heads.overcluster` = m holds m K centres and predicts K classes by merging them, label-free
(`merge_centres`, average linkage). On the set's eval view (eval_view), per checkpoint:
- merged: the prediction's whole-set Hungarian mIoU (the unsupervised figure, with the checkpoint's own groups);
- co-assignment here: the same with the groups of `coassignment_groups` on this set's own A = E[p'_k p'_l] (every
  position of the eval view; label-free, transductive): the co-assignment rule read on a run trained with another;
- centres, majority: the m K centres' own clusters, each mapped to its most frequent class (IIC's over-clustering
  protocol: the labels choose the merge, so this is a ceiling for any merge rule, not an unsupervised figure);
- centres per class: how many centres the merge gave each of the K classes (sorted, largest first);
- balance: the merged clusters' size entropy over log K (class_split.py's balance);
- merge precision: of the pairs of distinct centres the merge joins, weighted by the product of their pixel counts, the
  share whose centres have the same majority class (labels read: why a merge loses the ceiling, not a score). Low:
  the merge joins centres of different classes (section 57: stuff-15 0.45-0.57, CamVid 0.62-0.85).
merged well below the ceiling: the merge loses what the centres hold; both low: the centres do.
"""

from __future__ import annotations

from typing import Any

import torch
from _cli import checkpoint_script, eval_images  # experiments/scale/_cli.py

from misseg.diagnostics.shortcut import histogram_entropy
from misseg.lit.build import load_module
from misseg.metrics.matching import confusion_matrix, majority_mapping, match_and_score
from misseg.models.centroids import coassignment_groups, merge_probs
from misseg.models.segmenter import predict_from_probs
from misseg.objectives.mi import soft_assignment
from misseg.runs.errors import ConfigError

PROG = "experiments/scale/centre_split.py"
KEYS = ("K", "centres", "merged mIoU", "co-assignment here mIoU", "centres, majority mIoU", "centres per class")
KEYS += ("balance", "merge precision")


def centre_probs(module: Any, x: torch.Tensor) -> torch.Tensor:
    """(N, C, U, V) p' over the centres (not merged) of a module's network on images x, 32 at a time."""
    with torch.no_grad():
        return torch.cat([soft_assignment(*module.model(xb), module.model.tau) for xb in x.split(32)])


def set_coassignment(p: torch.Tensor) -> torch.Tensor:
    """p (N, C, U, V) p' over the centres -> A (C, C) = E[p'_k p'_l] over every position (float64): the co-assignment
    statistic `coassignment_groups` merges, read on a whole set instead of the training batches' running mean."""
    flat = p.permute(0, 2, 3, 1).reshape(-1, p.shape[1]).double()
    return flat.T @ flat / len(flat)


def merged_maps(p: torch.Tensor, groups: torch.Tensor, K: int, size: torch.Size) -> torch.Tensor:
    """(N, H, W) classes of p' over the centres merged by `groups`, as the prediction merges them."""
    return predict_from_probs(merge_probs(p, groups, K), size)[0]


def merge_precision(counts: torch.Tensor, groups: torch.Tensor) -> float:
    """counts (C, classes): each centre's pixels per class; groups (C,): the merge. The pixel-weighted share of the
    joined pairs of distinct centres whose majority classes (the ceiling's `majority_mapping`) agree; NaN where the
    merge joins no two centres."""
    counts = counts.double()
    n, major = counts.sum(1), torch.from_numpy(majority_mapping(counts.numpy()))
    joined = (groups[:, None] == groups[None, :]).fill_diagonal_(False)
    weight = n[:, None] * n[None, :] * joined
    return float((weight * (major[:, None] == major[None, :])).sum() / weight.sum())


def score(ckpt: str, data: Any) -> dict[str, int | float | str]:
    """KEYS for one checkpoint on a set's eval view."""
    module = load_module(ckpt).eval()
    groups = getattr(module.model.heads, "groups", None)
    if groups is None:
        raise ConfigError(f"{ckpt}: not an over-clustered centroid run (model.heads.overcluster > 1); pass one")
    K, C = module.model.K, len(groups)
    x, masks, _ = eval_images(data)
    num_classes = data.num_classes
    p = centre_probs(module, x)
    merged_confusion = confusion_matrix(merged_maps(p, groups, K, x.shape[-2:]), masks, K, num_classes)
    here = coassignment_groups(set_coassignment(p), K)
    here_confusion = confusion_matrix(merged_maps(p, here, K, x.shape[-2:]), masks, K, num_classes)
    centres = confusion_matrix(predict_from_probs(p, x.shape[-2:])[0], masks, C, num_classes)
    sizes = merged_confusion.sum(1).double()
    per_class = torch.bincount(groups, minlength=K).sort(descending=True).values
    return {
        "K": K,
        "centres": C,
        "merged mIoU": match_and_score(merged_confusion)["miou"],
        "co-assignment here mIoU": match_and_score(here_confusion)["miou"],
        "centres, majority mIoU": match_and_score(centres, "majority")["miou"],
        "centres per class": " ".join(str(n) for n in per_class.tolist()),
        "balance": float(histogram_entropy(sizes, K)),
        "merge precision": merge_precision(centres, groups),
    }


main = checkpoint_script(PROG, __doc__, KEYS, score)


if __name__ == "__main__":
    main()
