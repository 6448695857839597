"""Cluster-to-class matching and PA / mIoU from a confusion matrix: pure functions, no Lightning."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_pred: int, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """(num_pred, num_classes) int64 counts of (cluster, class) over pixels whose target != ignore_index.

    One bincount on the tensors' device; memory O(num_pred * num_classes) whatever the number of pixels.
    """
    pred, target = pred.reshape(-1), target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep].long(), target[keep]
    if target.numel() and (int(target.max()) >= num_classes or int(target.min()) < 0):
        raise ValueError(
            f"target holds class {int(target.max())} but num_classes={num_classes} "
            f"(valid labels are 0..{num_classes - 1} and {ignore_index} = ignore)"
        )
    counts = torch.bincount(pred * num_classes + target, minlength=num_pred * num_classes)
    return counts.reshape(num_pred, num_classes)


def hungarian_mapping(confusion: np.ndarray) -> np.ndarray:
    """One-to-one cluster -> class map maximizing matched pixels; -1 for clusters left unmatched."""
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    mapping = np.full(confusion.shape[0], -1, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def majority_mapping(confusion: np.ndarray) -> np.ndarray:
    """Many-to-one cluster -> class map (each cluster to its most frequent class), for over-clustering."""
    return confusion.argmax(axis=1).astype(np.int64)


def scores_from_confusion(confusion: np.ndarray | torch.Tensor, mapping: np.ndarray) -> dict:
    """PA, mIoU and per-class IoU after relabelling clusters with `mapping` (cluster -> class or -1).

    Clusters mapped to -1 count as wrong for every pixel. Classes with an empty union (absent from the
    ground truth and never predicted) are left out of the mean and reported as NaN.
    """
    confusion = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, np.int64)
    num_classes = confusion.shape[1]
    matched = np.zeros((num_classes, num_classes), dtype=np.int64)  # (predicted class, true class)
    for cluster, cls in enumerate(mapping):  # loop over K clusters on a K x K matrix, not over pixels
        if cls >= 0:
            matched[cls] += confusion[cluster]
    total = int(confusion.sum())
    tp = np.diag(matched).astype(np.float64)
    gt_count = confusion.sum(0).astype(np.float64)
    union = matched.sum(1) + gt_count - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return {
        "pa": float(tp.sum() / total) if total else float("nan"),
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "per_class_iou": [float(x) for x in iou],
        "mapping": [int(x) for x in mapping],
        "num_pixels": total,
    }


def match_and_score(confusion: np.ndarray | torch.Tensor, matching: str = "hungarian") -> dict:
    """Match clusters to classes on the whole-set confusion matrix, then score. matching: hungarian|majority."""
    conf = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, np.int64)
    if matching == "hungarian":
        mapping = hungarian_mapping(conf)
    elif matching == "majority":
        mapping = majority_mapping(conf)
    else:
        raise ValueError(f"matching={matching!r}: use 'hungarian' (one-to-one) or 'majority' (many-to-one)")
    out = scores_from_confusion(conf, mapping)
    out["matching"] = matching
    return out
