import itertools

import numpy as np
import pytest
import torch

from misseg.metrics.matching import confusion_matrix, match_and_score, scores_from_confusion
from misseg.metrics.segmentation import HungarianSegmentationMetric


def brute_force(pred: torch.Tensor, target: torch.Tensor, K: int) -> tuple[float, float, tuple[int, ...]]:
    """(PA, mIoU, mapping) of the PA-best one-to-one relabelling, by trying all K! permutations on the pixels."""
    keep = target != 255
    p, t = pred[keep], target[keep]
    best = (-1.0, 0.0, ())
    for perm in itertools.permutations(range(K)):
        mapped = torch.tensor(perm)[p]
        pa = float((mapped == t).double().mean())
        ious = []
        for c in range(K):
            union = int(((mapped == c) | (t == c)).sum())
            if union:  # a class absent from both is left out of the mean (as in misseg)
                ious.append(int(((mapped == c) & (t == c)).sum()) / union)
        if pa > best[0] + 1e-12:
            best = (pa, sum(ious) / len(ious), perm)
    return best


@pytest.mark.parametrize("seed, K", [(0, 2), (1, 3), (2, 4), (3, 4), (4, 5)])
def test_hungarian_matches_brute_force(seed, K):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, K, (3, 10, 10), generator=g)
    target[0, :2] = 255
    noise = torch.randint(0, K, (3, 10, 10), generator=g)
    pred = torch.where(torch.rand(3, 10, 10, generator=g) < 0.6, (target + 1) % K, noise)
    pred[target == 255] = 0
    m = HungarianSegmentationMetric(K, K)
    m.update(pred[:2], target[:2])
    m.update(pred[2:], target[2:])
    out = m.compute()
    pa, miou, mapping = brute_force(pred, target, K)
    assert out["pa"] == pytest.approx(pa, abs=1e-9)
    assert out["miou"] == pytest.approx(miou, abs=1e-9)
    assert tuple(out["mapping"]) == mapping  # PA ties between permutations are improbable on 300 noisy pixels
    assert out["num_images"] == 3
    assert out["num_pixels"] == int((target != 255).sum())


def test_miou_can_exceed_pa():
    """The counterexample to `miou <= pa` (once asserted by three tests): a small class matched perfectly."""
    conf = np.array([[25, 0, 25], [0, 1, 0], [25, 0, 24]])  # rows: clusters, columns: classes
    out = match_and_score(conf)
    pred = torch.repeat_interleave(torch.arange(3).repeat_interleave(3), torch.from_numpy(conf.reshape(-1)))
    target = torch.repeat_interleave(torch.arange(3).repeat(3), torch.from_numpy(conf.reshape(-1)))
    pa, miou, mapping = brute_force(pred, target, 3)
    assert out["pa"] == pytest.approx(0.51) == pytest.approx(pa)
    assert out["miou"] == pytest.approx((2 * 25 / 74 + 1) / 3) == pytest.approx(miou)
    assert out["miou"] > out["pa"] and tuple(out["mapping"]) == mapping == (2, 1, 0)


def test_invariant_to_relabelling_clusters():
    g = torch.Generator().manual_seed(7)
    target = torch.randint(0, 5, (2, 16, 16), generator=g)
    pred = torch.where(torch.rand(2, 16, 16, generator=g) < 0.7, target, torch.randint(0, 5, (2, 16, 16), generator=g))
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
