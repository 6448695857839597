import itertools

import numpy as np
import pytest
import torch

from misseg.metrics.matching import confusion_matrix, match_and_score, scores_from_confusion
from misseg.metrics.segmentation import HungarianSegmentationMetric


def brute_force_pa(pred, target, K):
    keep = target != 255
    best = 0.0
    for perm in itertools.permutations(range(K)):
        mapped = torch.tensor(perm)[pred]
        best = max(best, float((mapped[keep] == target[keep]).double().mean()))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hungarian_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    K = 4
    target = torch.randint(0, K, (3, 10, 10), generator=g)
    target[0, :2] = 255
    pred = torch.where(torch.rand(3, 10, 10, generator=g) < 0.6, (target + 1) % K, torch.randint(0, K, (3, 10, 10)))
    pred[target == 255] = 0
    m = HungarianSegmentationMetric(K, K)
    m.update(pred[:2], target[:2])
    m.update(pred[2:], target[2:])
    out = m.compute()
    assert out["pa"] == pytest.approx(brute_force_pa(pred, target, K), abs=1e-9)
    assert out["num_images"] == 3
    assert out["num_pixels"] == int((target != 255).sum())


def test_invariant_to_relabelling_clusters():
    g = torch.Generator().manual_seed(7)
    target = torch.randint(0, 5, (2, 16, 16), generator=g)
    pred = torch.where(torch.rand(2, 16, 16, generator=g) < 0.7, target, torch.randint(0, 5, (2, 16, 16)))
    relabel = torch.tensor([3, 0, 4, 1, 2])
    a = match_and_score(confusion_matrix(pred, target, 5, 5))
    b = match_and_score(confusion_matrix(relabel[pred], target, 5, 5))
    assert a["pa"] == pytest.approx(b["pa"]) and a["miou"] == pytest.approx(b["miou"])
    assert a["pa"] > 0.7


def test_miou_by_hand():
    conf = np.array([[3, 1], [0, 4]])  # rows: clusters, cols: classes; cluster 0 -> class 0
    out = scores_from_confusion(conf, np.array([0, 1]))
    assert out["pa"] == pytest.approx(7 / 8)
    assert out["per_class_iou"] == pytest.approx([3 / 4, 4 / 5])
    assert out["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)


def test_overclustering_majority_vs_hungarian():
    conf = np.array([[5, 0], [4, 0], [0, 6]])  # two clusters both cover class 0
    hung, maj = match_and_score(conf, "hungarian"), match_and_score(conf, "majority")
    assert hung["mapping"].count(-1) == 1
    assert maj["pa"] == pytest.approx(1.0) and hung["pa"] < 1.0


def test_ignore_and_out_of_range_label():
    pred = torch.zeros(1, 2, 2, dtype=torch.long)
    target = torch.tensor([[[0, 255], [255, 255]]])
    assert confusion_matrix(pred, target, 2, 2).sum() == 1
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix(pred, torch.tensor([[[0, 2], [0, 0]]]), 2, 2)


def test_one_cluster_trivial_baseline():
    target = torch.tensor([[[0, 0, 0, 1]]])
    out = match_and_score(confusion_matrix(torch.zeros_like(target), target, 2, 2))
    assert out["pa"] == pytest.approx(0.75)
    assert out["miou"] == pytest.approx(0.75 / 2)
