"""What do MI's clusters follow? NMI of the cluster map with the classes, with K-means on RGB and with position.

Usage: python experiments/scale/agreement.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint)
On the 64 px centre crops of every image of the set (the scale study's eval view). K-means RGB: K = the
checkpoint's K, fitted on the same pixels (misseg.baselines.kmeans). Position: K horizontal bands of equal
height (rows), K vertical bands (columns), and K rings around the crop's centre of equal area (rings: a
centre/border split, which flips leave unchanged; on ccp_persons the person stands in the middle of every photo).
Balance: entropy of the label histogram / log K for the classes and for the clusters (the MI bound's negatives push
towards balanced clusters). Edges: share of neighbouring pixel pairs with different labels (how fragmented a
labelling is). Image purity: the share of each image's pixels in its own most frequent label, averaged over the
images (1.000 = one label per image: clusters that label whole images rather than regions, a shortcut the
negatives from other images leave open). Position purity: the share of pixels whose label is the most frequent label
at their position over all images (1.000 = the same map in every image, as position.py's baseline: clusters that
follow where a pixel is, not what it shows; the classes' own value says how much position fixes them).
"""

from __future__ import annotations

import torch
from _agreement_keys import KEYS  # experiments/scale/_agreement_keys.py: levers_table.py reads the same names
from _cli import (  # experiments/scale/_cli.py: DATA_DIR CKPT... and the one-line errors
    checkpoint_table,
    cluster_maps,
    column_bands,
    data_and_checkpoints,
    eval_images,
    eval_view,
    rgb_kmeans,
    row_bands,
    run,
)
from position import centre_rings  # experiments/scale/position.py

from misseg.diagnostics.shortcut import normalized_entropy, normalized_mutual_information
from misseg.lit.build import load_module

PROG = "experiments/scale/agreement.py"


def edge_density(labels: torch.Tensor) -> float:
    """Share of horizontally or vertically adjacent pixel pairs with different labels (ignored pairs left out)."""
    pairs = ((labels[:, :, 1:], labels[:, :, :-1]), (labels[:, 1:], labels[:, :-1]))
    diff = sum(((a != b) & (a >= 0) & (b >= 0)).sum() for a, b in pairs)
    total = sum(((a >= 0) & (b >= 0)).sum() for a, b in pairs)
    return float(diff / total)


def label_counts(rows: torch.Tensor) -> torch.Tensor:
    """(R, M) labels (-1 = ignored) -> (R, max label + 1) float counts of each label per row, ignored left out."""
    shifted = rows + 1  # ignored (-1) -> bin 0, dropped below
    counts = torch.zeros(rows.shape[0], int(shifted.max()) + 1).scatter_add_(
        1, shifted, torch.ones_like(shifted, dtype=torch.float)
    )
    return counts[:, 1:]


def image_purity(labels: torch.Tensor) -> float:
    """Mean over the images (N, H, W) of the share of the image's valid pixels (>= 0) in its most frequent label."""
    counts = label_counts(labels.flatten(1))
    total = counts.sum(1)
    keep = total > 0  # an image with no valid pixel has no purity
    return float((counts.max(1).values[keep] / total[keep]).mean())


def position_purity(labels: torch.Tensor) -> float:
    """Share of the valid pixels (>= 0) of (N, H, W) labels whose label is the most frequent one at their position
    across the N images (pixel-weighted over the positions)."""
    counts = label_counts(labels.flatten(1).T)  # one row per position (H*W, N)
    return float(counts.max(1).values.sum() / counts.sum().clamp_min(1.0))


def scores(module: torch.nn.Module, x: torch.Tensor, gt: torch.Tensor, C: int) -> dict[str, float | int]:
    """KEYS for one network on the eval view's images x (N, 3, H, W) and labels gt (N, H, W; ignored -> -1)."""
    N, _, Hh, W = x.shape
    K = module.model.K
    clusters = cluster_maps(module, x)
    rgb = rgb_kmeans(x, K)
    rows = row_bands(K, N, Hh, W)
    cols = column_bands(K, N, Hh, W)
    rings = centre_rings(Hh, W, K).expand(N, Hh, W)
    nmi = normalized_mutual_information
    values = [
        K,
        nmi(clusters, gt),
        nmi(rgb, gt),
        nmi(clusters, rgb),
        nmi(clusters, rows),
        nmi(clusters, cols),
        nmi(clusters, rings),
        normalized_entropy(gt, C),
        normalized_entropy(clusters, K),
        edge_density(gt),
        edge_density(rgb),
        edge_density(clusters),
        image_purity(gt),
        image_purity(clusters),
        position_purity(gt),
        position_purity(clusters),
    ]
    return dict(zip(KEYS, values, strict=True))


def table(root: str, ckpts: list[str]) -> None:
    """The header, then one markdown row per checkpoint."""
    data = eval_view(root)
    x, _, gt = eval_images(data)
    checkpoint_table(data, ckpts, KEYS, lambda c, _: scores(load_module(c).eval(), x, gt, data.num_classes))


def main(argv: list[str] | None = None) -> None:
    args = data_and_checkpoints(PROG, __doc__).parse_args(argv)
    run(PROG, table, args.data, args.ckpts)


if __name__ == "__main__":
    main()
