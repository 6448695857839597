"""Cluster-to-class matching and PA / mIoU from a confusion matrix: pure functions, no Lightning."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from misseg.metrics import MATCHINGS

_LABEL_BINS = 256  # class ids and ignore_index live in 0..255 (uint8 masks)


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_pred: int, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """(num_pred, num_classes) int64 counts of (cluster, class) over pixels whose target != ignore_index.

    One bincount on the tensors' device; memory O(num_pred * num_classes) whatever the number of pixels.
    Labels are binned in 256 columns (a uint8 label's range) and ignore_index is dropped from the counts
    afterwards, which avoids compacting the pixels with a boolean mask (the slow part on a CPU).
    """
    pred, target = pred.reshape(-1), target.reshape(-1)
    if not 0 <= ignore_index < _LABEL_BINS:
        raise ValueError(f"ignore_index={ignore_index}: must be in 0..{_LABEL_BINS - 1}")
    if target.dtype != torch.uint8 and target.numel():
        lo, hi = (int(v) for v in torch.aminmax(target))
        if lo < 0 or hi >= _LABEL_BINS:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"target holds class {bad} but num_classes={num_classes} "
                f"(valid labels are 0..{num_classes - 1} and {ignore_index} = ignore)"
            )
    index = torch.add(target.long(), pred.long(), alpha=_LABEL_BINS)  # pred * 256 + target in one pass
    counts = torch.bincount(index, minlength=num_pred * _LABEL_BINS)
    if counts.numel() != num_pred * _LABEL_BINS:
        raise ValueError(f"pred holds cluster ids >= num_pred={num_pred} (valid ids are 0..{num_pred - 1})")
    counts = counts.reshape(num_pred, _LABEL_BINS)
    counts[:, ignore_index] = 0
    stray = counts[:, num_classes:].sum(0).nonzero()
    if stray.numel():
        raise ValueError(
            f"target holds class {int(stray[0]) + num_classes} but num_classes={num_classes} "
            f"(valid labels are 0..{num_classes - 1} and {ignore_index} = ignore)"
        )
    return counts[:, :num_classes].contiguous()


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
        raise ValueError(f"matching={matching!r}: use one of {MATCHINGS} (one-to-one, many-to-one)")
    out = scores_from_confusion(conf, mapping)
    out["matching"] = matching
    return out
