"""Which partition does each pool of negatives reward? Eq. 4.12's ceiling of the classes, of reference maps and of
trained clusters.

Usage: python experiments/scale/ceiling.py DATA_DIR [CKPT ...] [--K K]   (one markdown row per partition)
For each partition of the set's 64 px eval view (centre crops of every image), the most eq. 4.12 can give it under
each model.objective.negatives pool, over every critic (misseg.diagnostics.ceiling: -2 log 2 = -1.386 for a partition
the pool's negatives share, 0 for one they never share). Rows: the classes; K-means on RGB (K clusters, fitted on
the same pixels); K horizontal bands of equal height (rows); K bands of a random axis and label order in each image
(an equal split of every image that follows nothing, seeded); whole images (image n labelled n mod K: the
image-labelling shortcut of sections 12, 17 and 31); then each checkpoint's argmax-p' clusters. K: the
checkpoints' (all the same), else --K, else the number of classes. Pixels the masks ignore are left out of every row.
Why: a pool rewards the partitions whose negatives rarely share the anchor's cluster; whether the classes are among
the best it can pay for is a property of the set and the pool, which this reads without training anything. A run's
own bound on the same view (pools.py) against its clusters' ceiling says how much of its partition its critic reads.
"""

from __future__ import annotations

import torch
from _cli import add_checkpoints, add_data, cluster_maps, eval_images, eval_view, row_bands, run

from misseg.baselines.kmeans import kmeans_fit, kmeans_predict
from misseg.diagnostics.ceiling import POOLS, bound_ceiling
from misseg.lit.build import load_module
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/ceiling.py"


def random_bands(K: int, N: int, H: int, W: int, seed: int = 0) -> torch.Tensor:
    """(N, H, W): each image cut into K bands of equal size along a random axis, the bands' labels in a random order."""
    gen = torch.Generator().manual_seed(seed)
    rows = row_bands(K, N, H, W)
    cols = (torch.arange(W) * K // W)[None, None, :].expand(N, H, W)
    vertical = torch.rand(N, generator=gen) < 0.5
    bands = torch.where(vertical[:, None, None], cols, rows)
    order = torch.stack([torch.randperm(K, generator=gen) for _ in range(N)])  # (N, K): one relabelling per image
    return order.gather(1, bands.flatten(1)).view(N, H, W)


def row(name: str, labels: torch.Tensor, K: int, ignored: torch.Tensor) -> None:
    labels = labels.masked_fill(ignored, -1)
    print(f"| {name} | {K} | " + " | ".join(f"{bound_ceiling(labels, K, p):.3f}" for p in POOLS) + " |", flush=True)


def table(root: str, ckpts: list[str], K: int | None) -> None:
    data = eval_view(root)
    x, _, gt = eval_images(data)
    modules = [load_module(c).eval() for c in ckpts]
    Ks = {m.model.K for m in modules}
    if len(Ks) > 1:
        raise ValueError(f"CKPT: the checkpoints have different K ({sorted(Ks)}); pass checkpoints of one K")
    K = Ks.pop() if Ks else (K or data.num_classes)
    N, _, H, W = x.shape
    ignored = gt < 0
    print("| partition | K | " + " | ".join(POOLS) + " |")
    print("|---" * (len(POOLS) + 2) + "|")
    row("classes", gt, data.num_classes, ignored)
    pixels = [xb.permute(0, 2, 3, 1).reshape(-1, 3) for xb in x.split(32)]
    row("K-means RGB", kmeans_predict(x, kmeans_fit(pixels, K, seed=0)), K, ignored)
    row("rows (K bands)", row_bands(K, N, H, W), K, ignored)
    row("K bands, random axis and order per image", random_bands(K, N, H, W), K, ignored)
    row("whole images (image n: label n mod K)", (torch.arange(N) % K)[:, None, None].expand(N, H, W), K, ignored)
    for c, m in zip(ckpts, modules, strict=True):
        row(c, cluster_maps(m, x), K, ignored)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_data(ap)
    add_checkpoints(ap, help="checkpoints whose clusters get a row each (none: the reference rows only)", nargs="*")
    ap.add_argument("--K", type=int, default=None, help="clusters of the reference rows without checkpoints")
    args = ap.parse_args(argv)
    if args.K is not None and args.K < 2:
        ap.error(f"--K {args.K}: use at least 2 clusters")
    run(PROG, table, args.data, args.ckpts, args.K)


if __name__ == "__main__":
    main()
