"""torchmetrics wrapper: a confusion state on the device, summed over ranks, matched once in compute()."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from misseg.metrics.matching import confusion_matrix, match_and_score


class HungarianSegmentationMetric(Metric):
    """Unsupervised segmentation accuracy: clusters are matched to classes on the whole evaluation set.

    State is one (num_pred, num_classes) int64 confusion matrix (dist_reduce_fx="sum"), so DDP gives
    exactly the single-process result and memory does not grow with the number of images.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_pred: int, num_classes: int, ignore_index: int = 255, matching: str = "hungarian") -> None:
        super().__init__()
        self.num_pred, self.num_classes = num_pred, num_classes
        self.ignore_index, self.matching = ignore_index, matching
        self.add_state("confusion", torch.zeros(num_pred, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred: (B, H, W) cluster ids, target: (B, H, W) class ids with ignore_index."""
        self.confusion += confusion_matrix(pred, target, self.num_pred, self.num_classes, self.ignore_index)
        self.num_images += pred.shape[0]

    def compute(self) -> dict:
        out = match_and_score(self.confusion, self.matching)
        out["num_images"] = int(self.num_images)
        out["confusion"] = self.confusion.cpu().tolist()
        return out
