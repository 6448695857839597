"""How much of a clustering's mIoU comes from labelling whole images? Fill each image with its majority label, rescore.

Usage: python experiments/scale/image_fill.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint)
On the 64 px centre crops of every image (the scale study's eval view), whole-set Hungarian matching as everywhere.
Columns: mIoU of the clusters; of the same clusters with every pixel of an image set to that image's most frequent
cluster (`filled`); and of the classes filled the same way, which uses the labels: the best a labelling with one
label per image can do whatever its clusters (with K = 2, a perfect "mostly person / mostly background" classifier of
whole crops). If the filled clusters score as well as the clusters, the split inside the images adds nothing and the
clusters label images, not regions (agreement.py's image purity near 1 says the same without labels); if they score
near the classes' ceiling, the mIoU is an image classifier's. The label-free reference for such a classifier:
K-means (K = the checkpoint's, 10 seedings, the lowest inertia kept) on each image's mean feature (the frozen timm
body's map where the encoder has one, else L), each image filled with its cluster: a whole-image clustering that
needs no MI training. Last column: whether the split *inside* the images follows the classes (labels), the NMI of
clusters and classes given the image (misseg.diagnostics.shortcut.conditional_nmi; 0 for clusters that label whole
images or cut them anywhere but along the classes, 1 for a split that is the classes' in every image), which the
filled scores cannot tell apart from a lucky whole-image labelling.
"""

from __future__ import annotations

import torch
from _cli import (
    checkpoint_table,
    cluster_maps,
    data_and_checkpoints,
    eval_images,
    eval_view,
    miou,
    run,
)  # experiments/scale/_cli.py
from agreement import label_counts  # experiments/scale/agreement.py

from misseg.baselines.kmeans import kmeans_fit
from misseg.diagnostics.features import has_body, local_features
from misseg.diagnostics.shortcut import conditional_nmi
from misseg.lit.build import load_module

PROG = "experiments/scale/image_fill.py"


def fill_images(labels: torch.Tensor) -> torch.Tensor:
    """(N, H, W) labels (-1 = ignored) -> every pixel of image n set to image n's most frequent valid label
    (ties to the lower label; an image with no valid pixel gets label 0, which its ignored pixels never score)."""
    majority = label_counts(labels.flatten(1)).argmax(1)
    return majority[:, None, None].expand_as(labels)


def image_kmeans(module: torch.nn.Module, x: torch.Tensor, K: int) -> torch.Tensor:
    """(N, H, W): K-means on the images' mean features (body, else L), each image filled with its cluster."""
    layer = "body" if has_body(module) else "L"
    with torch.no_grad():
        v = torch.cat([local_features(module, xb, layer).mean((2, 3)) for xb in x.split(32)])
    centres = kmeans_fit([v], K, seed=0, restarts=10)
    cluster = torch.cdist(v, centres).argmin(1)
    return cluster[:, None, None].expand(x.shape[0], *x.shape[2:])


KEYS = (
    "K",
    "clusters",
    "clusters, filled per image",
    "K-means on image means, filled",
    "classes, filled per image (labels)",
    "NMI(clusters, classes) given the image",
)


def table(root: str, ckpts: list[str]) -> None:
    """The header, then one markdown row per checkpoint (the classes' ceiling, the same on every row)."""
    data = eval_view(root)
    x, masks, gt = eval_images(data)
    C = data.num_classes
    ceiling = miou(fill_images(gt), masks, C, C)
    image = torch.arange(len(x))[:, None, None].expand_as(gt)  # each pixel's image, for the split within images

    def score(ckpt: str, _: object) -> dict[str, float | int]:
        module = load_module(ckpt).eval()
        K = module.model.K
        clusters = cluster_maps(module, x)
        images = image_kmeans(module, x, K)
        cells = [miou(clusters, masks, K, C), miou(fill_images(clusters), masks, K, C), miou(images, masks, K, C)]
        within = conditional_nmi(clusters, gt, image)
        return dict(zip(KEYS, [K, *cells, ceiling, within], strict=True))

    checkpoint_table(data, ckpts, KEYS, score)


def main(argv: list[str] | None = None) -> None:
    args = data_and_checkpoints(PROG, __doc__).parse_args(argv)
    run(PROG, table, args.data, args.ckpts)


if __name__ == "__main__":
    main()
