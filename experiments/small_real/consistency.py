"""Are the clusters the same across images? Whole-set vs per-image matching for trained runs.

The MI objective's high-level features H_k are computed per image, so nothing forces cluster k of one image
to mean what cluster k means in another; the evaluation matches clusters to classes once for the whole set.
For each run this prints: the whole-set Hungarian mIoU (equal to the run's metrics.json, a check), the mean
per-image mIoU under that whole-set mapping, and the mean per-image mIoU when each image gets its own
Hungarian mapping (an oracle). A large oracle gap means the clusters segment each image but are permuted
between images. Usage: python experiments/small_real/consistency.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from misseg.lit.build import load_module, make_datamodule
from misseg.metrics.matching import confusion_matrix, hungarian_mapping, majority_mapping, scores_from_confusion
from misseg.runs.errors import OneLineArgumentParser, reported_errors

PROG = "experiments/small_real/consistency.py"


def per_image_confusions(module, loader, K: int, C: int) -> np.ndarray:
    """(N, K, C) confusion matrix of every evaluation image (misseg's confusion_matrix, ignore = 255 dropped)."""
    out = []
    for batch in loader:
        classes, _, _ = module.predict(batch["image"])
        out += [confusion_matrix(c, m, K, C).numpy() for c, m in zip(classes, batch["mask"], strict=True)]
    return np.stack(out)


def mean_miou(confusions: np.ndarray, mappings: list[np.ndarray]) -> float:
    values = [scores_from_confusion(c, m)["miou"] for c, m in zip(confusions, mappings, strict=True)]
    return float(np.nanmean(values))


def tables(run_dirs: list[str]) -> None:
    """One row per run, then the means over seeds per dataset and method."""
    print("| run | whole-set mIoU | per-image mIoU, whole-set mapping | per-image mIoU, per-image mapping | gap |")
    print("|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for run in map(Path, run_dirs):
        cfg = OmegaConf.load(run / "config_resolved.yaml")
        datamodule = make_datamodule(cfg.data, str(run))
        datamodule.setup("validate")
        module = load_module(run / "checkpoints" / "last.ckpt", num_classes=datamodule.num_classes).eval()
        K, C = module.hparams.K, datamodule.num_classes
        with torch.no_grad():
            conf = per_image_confusions(module, datamodule.val_dataloader(), K, C)
        whole = conf.sum(0)
        # the run's own matching for the whole set (metrics.json); the per-image oracle is always one-to-one
        mapping = majority_mapping(whole) if cfg.model.get("matching") == "majority" else hungarian_mapping(whole)
        set_miou = scores_from_confusion(whole, mapping)["miou"]
        shared = mean_miou(conf, [mapping] * len(conf))
        oracle = mean_miou(conf, [hungarian_mapping(c) for c in conf])
        print(f"| {run} | {set_miou:.3f} | {shared:.3f} | {oracle:.3f} | {oracle - shared:+.3f} |")
        groups[(run.parts[-3], run.parts[-1])].append((set_miou, shared, oracle))  # OUT/<dataset>/seed<S>/<method>
    print(
        "\nmean over seeds:\n\n| dataset | method | n | whole-set mIoU | per image, whole-set mapping | "
        "per image, own mapping | gap |\n|---|---|---|---|---|---|---|"
    )
    for (dataset, method), values in sorted(groups.items()):
        a, b, c = (float(np.mean(column)) for column in zip(*values, strict=True))
        print(f"| {dataset} | {method} | {len(values)} | {a:.3f} | {b:.3f} | {c:.3f} | {c - b:+.3f} |")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("runs", metavar="RUN_DIR", nargs="+", help="training runs (OUT/<dataset>/seed<S>/<method>)")
    args = ap.parse_args(argv)
    for run in map(Path, args.runs):
        if not run.is_dir():
            ap.error(f"RUN_DIR {run}: no such directory; pass training runs (OUT/<dataset>/seed<S>/<method>)")
        for need in (run / "config_resolved.yaml", run / "checkpoints" / "last.ckpt"):
            if not need.is_file():
                ap.error(f"RUN_DIR {run}: no such file {need}; pass a finished training run")
    with reported_errors(f"{PROG}: error"):  # a malformed dataset or checkpoint: misseg's one line, exit 2
        tables(args.runs)


if __name__ == "__main__":
    main()
