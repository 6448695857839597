"""How often would the centroid heads re-seed a class? Label-free, from a checkpoint's centres (section 46).

Usage: python experiments/scale/reseeds.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint)
`CentroidHeads.kmeans_step` moves a class that no valid position of the batch chose to a random position of the
batch, throwing its centre away. A class whose content lives in few images (COCO-Stuff's snow, water) is absent from
many batches of 16 and is thrown away each time, however good its centre. Read on the set's seeded batches of 16
(the eval view's centre crops, `seeded_batches`, the training batch size) with the checkpoint's centres held fixed:
the mean number of classes a batch leaves empty (each one a re-seed in training), the classes empty in at least
one batch in 4, and the share of images holding each class (sorted, in the image's valid positions on L's grid:
with model.ignore_in_loss, the pixels not labelled 255, as in training; otherwise all: no label is read then).
"""

from __future__ import annotations

from typing import Any

import torch
from _cli import checkpoint_script  # experiments/scale/_cli.py

from misseg.diagnostics.shortcut import seeded_batches
from misseg.lit.build import load_module
from misseg.objectives.mi import pool_valid
from misseg.runs.errors import ConfigError

PROG = "experiments/scale/reseeds.py"
KEYS = ("K", "empty per batch", "often empty", "image share per class")


def chosen(module: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, K) bool: does any valid position of image b choose class k (the nearest centre, kmeans_step's rule)?"""
    with torch.no_grad():
        L, H = module.model(x)
    B, P, U, V = L.shape
    k = torch.einsum("bkp,bpuv->bkuv", H, L).argmax(1)  # (B, U, V)
    valid = module.valid_pixels({"mask": mask})
    keep = pool_valid(valid, (U, V)) if valid is not None else torch.ones(B, U, V, dtype=torch.bool)
    onehot = torch.nn.functional.one_hot(k, H.shape[1]).bool() & keep[..., None]
    return onehot.flatten(1, 2).any(1)


def score(ckpt: str, data: Any) -> dict[str, int | float | str]:
    """KEYS for one checkpoint on a set's eval view (data.val_set)."""
    module = load_module(ckpt).eval()
    if not hasattr(module.model.heads, "kmeans_step"):
        raise ConfigError(f"{ckpt}: not a centroid-heads run (model/heads=centroids), nothing re-seeds; pass one")
    per_image = [chosen(module, x, m) for x, m in seeded_batches(data.val_set)]
    empty = torch.stack([~c.any(0) for c in per_image])  # (batches, K): the class no image of the batch chose
    share = torch.cat(per_image).float().mean(0).sort(descending=True).values
    return {
        "K": int(empty.shape[1]),
        "empty per batch": float(empty.float().sum(1).mean()),
        "often empty": int((empty.float().mean(0) >= 0.25).sum()),
        "image share per class": " ".join(f"{s:.2f}" for s in share.tolist()),
    }


main = checkpoint_script(PROG, __doc__, KEYS, score)


if __name__ == "__main__":
    main()
