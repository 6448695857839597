"""K-means on a checkpoint's L with K centres, against m K centres merged into K by average linkage (section 55).

Usage: python experiments/scale/kmeans_merge.py DATA_DIR CKPT [CKPT ...] [--over 3]   (one markdown row per checkpoint)
The over-clustering lever (`model.heads.overcluster`) changes two things at once: the centres the bound trains L
around, and the prediction's merge (`merge_centres`). This reads the merge alone, on L held fixed: K-means
(k-means++, 10 restarts, seed 0) on the checkpoint's L over the set's eval view (eval_view), every pixel's nearest
centre, scored by whole-set Hungarian mIoU; once with K centres, once with m K centres merged into K classes by the
lever's own rule. Label-free up to the scoring. The balance is the clusters' size entropy over log K.
"""

from __future__ import annotations

from typing import Any

import torch
from _cli import add_checkpoints, add_data, checkpoint_table, eval_images, eval_view, miou, run  # _cli.py here

from misseg.baselines.kmeans import kmeans_fit, kmeans_predict_maps
from misseg.diagnostics.features import local_features
from misseg.diagnostics.shortcut import histogram_entropy
from misseg.lit.build import load_module
from misseg.models.centroids import merge_centres
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/kmeans_merge.py"
KEYS = ("K", "K-means K", "balance K", "K-means m K merged", "balance merged", "centres per class")


def score(ckpt: str, data: Any, over: int) -> dict[str, int | float | str]:
    """KEYS for one checkpoint on a set's eval view."""
    module = load_module(ckpt).eval()
    K = module.model.K
    x, masks, _ = eval_images(data)
    with torch.no_grad():
        feats = [local_features(module, xb) for xb in x.split(32)]
    pixels = [f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats]
    row: dict[str, int | float | str] = {"K": K}
    for key, n in (("K", K), ("m K merged", over * K)):
        centres = kmeans_fit(pixels, n, seed=0, restarts=10)
        groups = merge_centres(centres, K) if n > K else torch.arange(K)
        maps = torch.cat([groups[kmeans_predict_maps(f, centres, size=x.shape[-2:])[0]] for f in feats])
        row[f"K-means {key}"] = miou(maps, masks, K, data.num_classes)
        row["balance " + key.split()[-1]] = histogram_entropy(torch.bincount(maps.flatten(), minlength=K), K)
        if n > K:
            per_class = torch.bincount(groups, minlength=K).sort(descending=True).values
            row["centres per class"] = " ".join(str(c) for c in per_class.tolist())
    return row


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_data(ap)
    add_checkpoints(ap)
    ap.add_argument("--over", type=int, default=3, help="m: centres per class before the merge (>= 2)")
    args = ap.parse_args(argv)
    if args.over < 2:
        ap.error(f"--over {args.over}: use m >= 2 (m K centres merged into K)")
    run(PROG, lambda root, ckpts: checkpoint_table(eval_view(root), ckpts, KEYS, lambda c, d: score(c, d, args.over)),
        args.data, args.ckpts)  # fmt: skip


if __name__ == "__main__":
    main()
