"""Where a trained L's linear-probe gain lies: on the pixels its own clusters get right, or on the ones they get wrong?

Usage: python experiments/scale/probe_source.py DATA_DIR CKPT [CKPT ...] [--seed S]   (one markdown row per checkpoint)
Why: a frozen body whose last stages the objective trains (section 39) moves L towards the split the objective pays,
the run's own clusters. If the probe's gain over the initial weights (evaluate init=initial) comes from the pixels
those clusters already get right and not from the rest, training teaches the body the clusters' split, and the probe
can only grow as far as the clusters follow the classes; a gain on the wrong pixels too would be content beyond it.
On the 64 px centre crops of every image (the scale study's eval view), the probe protocol of misseg.evaluate
probe=linear: fitted on the seeded half of the images (`--seed`, evaluate's seed; the run's seed gives its probe
split), scored on the other half. The clusters are matched to the classes on the whole set (Hungarian; many-to-one
where K exceeds the classes, as `matching=majority`), and their right and wrong pixels split the test half.
Columns: the probe's mIoU from the initial and the trained L (the trained one is evaluate's probe figure); the share
of test pixels the clusters get right; the probe's pixel accuracy on those right and on the wrong pixels, initial and
trained; and a probe fitted to the clusters' own labels instead of the classes (pixel accuracy against the clusters
on the test half), initial and trained: how linearly L holds the clusters' split. Labels are for evaluation only.
"""

from __future__ import annotations

import torch
from _cli import add_checkpoints, add_data, cluster_maps, eval_images, eval_view, run  # experiments/scale/_cli.py

from misseg.diagnostics.evaluation import PROBE_MIN_STEPS, PROBE_SCHEDULE
from misseg.diagnostics.features import local_features
from misseg.diagnostics.probe import fit_linear_probe, identity_scores, probe_split
from misseg.evaluate import random_init_module
from misseg.lit.build import load_module
from misseg.metrics.matching import confusion_matrix, match_and_score
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/probe_source.py"
KEYS = (
    "K",
    "probe mIoU: initial",
    "probe mIoU: trained",
    "clusters right (share of test pixels)",
    "probe accuracy on the right pixels: initial",
    "on the right pixels: trained",
    "on the wrong pixels: initial",
    "on the wrong pixels: trained",
    "probe of the clusters' labels: initial",
    "probe of the clusters' labels: trained",
)


def matched(clusters: torch.Tensor, masks: torch.Tensor, K: int, C: int) -> torch.Tensor:
    """(N, H, W) clusters -> the class each is matched to over the whole set (one-to-one for K <= C, else each
    cluster to its most frequent class); an unmatched cluster's pixels get -1 (wrong wherever a class is)."""
    confusion = confusion_matrix(clusters, masks, K, C)
    mapping = match_and_score(confusion, "hungarian" if K <= C else "majority")["mapping"]
    return torch.tensor(mapping)[clusters]


def region_accuracy(pred: torch.Tensor, gt: torch.Tensor, region: torch.Tensor) -> float:
    """Pixel accuracy of pred against gt (-1 = ignored) on the labelled pixels where `region` holds; nan if none."""
    keep = region & (gt >= 0)
    n = int(keep.sum())
    return float((pred[keep] == gt[keep]).sum()) / n if n else float("nan")


def features(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """L of images x (N, 3, H, W), 32 at a time, in bfloat16 (as misseg.evaluate keeps a probe's features)."""
    with torch.no_grad():
        return torch.cat([local_features(module, xb).to(torch.bfloat16) for xb in x.split(32)])


def probe_predictions(
    fit_L: torch.Tensor, targets: torch.Tensor, test_L: torch.Tensor, size: tuple[int, int], C: int, seed: int
) -> torch.Tensor:
    """A linear probe fitted to targets (N_fit, H, W; uint8, 255 = ignored; C classes) on L of the fit images as
    misseg.evaluate fits it -> its (N_test, H, W) predictions from L of the test images, upsampled to `size`."""
    probe, _ = fit_linear_probe(fit_L, targets, C, schedule=PROBE_SCHEDULE, min_steps=PROBE_MIN_STEPS, seed=seed)
    with torch.no_grad():
        return torch.cat([probe(Lb, size).argmax(1) for Lb in test_L.split(32)])


def scores(ckpt: str, x: torch.Tensor, masks: torch.Tensor, gt: torch.Tensor, C: int, seed: int) -> dict:
    trained = load_module(ckpt, num_classes=C).eval()
    initial = random_init_module(ckpt, seed, initial=True, num_classes=C).eval()
    K = trained.model.K
    clusters = cluster_maps(trained, x)
    fit, test = probe_split(len(x), 0.5, seed)
    right = matched(clusters, masks, K, C)[test] == gt[test]
    own = clusters.to(torch.uint8)  # the clusters as a probe's targets (every pixel labelled)
    share = float(right[gt[test] >= 0].float().mean())
    row: dict[str, float | int] = {"K": K, "clusters right (share of test pixels)": share}
    for name, module in (("initial", initial), ("trained", trained)):
        fit_L, test_L = features(module, x[fit]), features(module, x[test])
        pred = probe_predictions(fit_L, masks[fit], test_L, x.shape[-2:], C, seed)
        own_pred = probe_predictions(fit_L, own[fit], test_L, x.shape[-2:], K, seed)
        row[f"probe mIoU: {name}"] = identity_scores(confusion_matrix(pred, masks[test], C, C))["miou"]
        row[f"{'probe accuracy ' if name == 'initial' else ''}on the right pixels: {name}"] = region_accuracy(
            pred, gt[test], right
        )
        row[f"on the wrong pixels: {name}"] = region_accuracy(pred, gt[test], ~right)
        everywhere = torch.ones_like(right)
        row[f"probe of the clusters' labels: {name}"] = region_accuracy(own_pred, clusters[test], everywhere)
    return row


def table(root: str, ckpts: list[str], seed: int) -> None:
    data = eval_view(root)
    x, masks, gt = eval_images(data)
    print("| checkpoint | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for c in ckpts:
        r = scores(c, x, masks, gt, data.num_classes, seed)
        cells = (f"{r[k]}" if isinstance(r[k], int) else f"{r[k]:.3f}" for k in KEYS)
        print(f"| {c} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_data(ap)
    add_checkpoints(ap)
    ap.add_argument("--seed", type=int, default=0, help="the probe split's and fit's seed (the run's: evaluate seed=)")
    args = ap.parse_args(argv)
    run(PROG, table, args.data, args.ckpts, args.seed)


if __name__ == "__main__":
    main()
