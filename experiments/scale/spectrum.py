"""Where does the class split sit in each checkpoint's L? misseg/diagnostics/spectrum.py on a whole set.

Usage: python experiments/scale/spectrum.py DATA_DIR CKPT [CKPT ...] [--init trained|random|initial] [--seed S]
       [--kmeans K [K ...]]
One markdown row per checkpoint: for each of the top --pcs principal components of L's patches (every 64 px
centre crop of the set, the scale study's eval view), "variance share / position share / image share /
sign-split mIoU", then the best sign split of the top 8 and, with 2 classes, the PC closest to the class-mean
direction. --init random|initial: the checkpoint's architecture at seeded random weights (evaluate init=random),
or with its config's weights files loaded (init=initial: a frozen pretrained network before training). --kmeans:
also K-means on L's patches, scored on the patch labels (majority matching when K > classes).
Data: a folder set of make_data.py (shorter side 80 px).
"""

from __future__ import annotations

import torch
from _cli import (  # experiments/scale/_cli.py: DATA_DIR CKPT... and the one-line errors
    data_and_checkpoints,
    eval_view,
    run,
)

from misseg.baselines.kmeans import kmeans_fit, kmeans_predict
from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.features import local_features
from misseg.diagnostics.spectrum import patch_labels, principal_splits
from misseg.lit.build import load_module
from misseg.metrics.matching import confusion_matrix, match_and_score

PROG = "experiments/scale/spectrum.py"
INITS = ("trained", "random", "initial")


def features(ckpt: str, init: str, seed: int, data: FolderDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    """L of every eval image (in file order) and the masks, under the checkpoint's weights or an init of them."""
    from misseg.evaluate import random_init_module

    module = load_module(ckpt) if init == "trained" else random_init_module(ckpt, seed, initial=init == "initial")
    module.eval()
    Ls, masks = [], []
    loader = torch.utils.data.DataLoader(data.val_set, batch_size=32, shuffle=False)
    with torch.no_grad():
        for batch in loader:
            Ls.append(local_features(module, batch["image"]).float())
            masks.append(batch["mask"])
    return torch.cat(Ls), torch.cat(masks)


def kmeans_miou(L: torch.Tensor, labels: torch.Tensor, K: int, num_classes: int, seed: int) -> float:
    """K-means with K clusters on every patch of L (k-means++, 20 iterations, seeded), scored on the patch labels:
    Hungarian when K = the number of classes, majority (many-to-one, over-clustering) when K is larger."""
    centres = kmeans_fit([L.permute(0, 2, 3, 1).reshape(-1, L.shape[1])], K, iters=20, seed=seed)
    confusion = confusion_matrix(kmeans_predict(L, centres), labels, K, num_classes)
    return match_and_score(confusion, "hungarian" if K == num_classes else "majority")["miou"]


def table(root: str, ckpts: list[str], init: str, seed: int, pcs: int, ks: list[int] = ()) -> None:
    """The header, then one markdown row per checkpoint."""
    data = eval_view(root)
    C = data.num_classes
    print(
        "| checkpoint | weights | "
        + " | ".join(f"PC{i}: variance / position / image / sign split" for i in range(pcs))
        + " | best sign split of the top 8 | closest PC to the class-mean direction (cos), its split |"
        + "".join(f" K-means on L, K = {k} |" for k in ks)
    )
    print("|---" * (pcs + 4 + len(ks)) + "|")
    for c in ckpts:
        L, masks = features(c, init, seed, data)
        labels = patch_labels(masks, tuple(L.shape[-2:]), C)
        r = principal_splits(L, labels, C, num_pcs=8, seed=seed)
        cells = [
            f"{r['variance'][i]:.3f} / {r['position'][i]:.2f} / {r['image'][i]:.2f} / {r['sign_split'][i]:.3f}"
            for i in range(pcs)
        ]
        best = max(range(len(r["sign_split"])), key=r["sign_split"].__getitem__)
        closest = "-"
        if "class_cosine" in r:
            j = max(range(len(r["class_cosine"])), key=r["class_cosine"].__getitem__)
            closest = f"PC{j} ({r['class_cosine'][j]:.2f}), {r['class_split']:.3f}"
        weights = init if init == "trained" else f"{init} (seed {seed})"
        row = [c, weights, *cells, f"PC{best}: {r['sign_split'][best]:.3f}", closest]
        row += [f"{kmeans_miou(L, labels, k, C, seed):.3f}" for k in ks]
        print("| " + " | ".join(row) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = data_and_checkpoints(PROG, __doc__)
    ap.add_argument("--init", choices=INITS, default="trained", help="the checkpoint's weights, or an init of them")
    ap.add_argument("--seed", type=int, default=0, help="the random init's seed and the PCA sample's")
    ap.add_argument("--pcs", type=int, default=4, choices=range(1, 9), metavar="{1..8}", help="PCs shown")
    ap.add_argument(
        "--kmeans", type=int, nargs="*", default=[], metavar="K", help="also K-means on L's patches with these K"
    )
    args = ap.parse_args(argv)
    if any(k < 2 for k in args.kmeans):
        ap.error(f"--kmeans {args.kmeans}: each K must be >= 2")
    run(PROG, table, args.data, args.ckpts, args.init, args.seed, args.pcs, args.kmeans)


if __name__ == "__main__":
    main()
