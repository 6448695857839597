"""Which partition does each pool of negatives reward? Eq. 4.12's ceiling of the classes, of reference maps and of
trained clusters.

Usage: python experiments/scale/ceiling.py DATA_DIR [CKPT ...] [--K K] [--correspondence W[,W...]] [--partners set]
(one markdown row per partition)
For each partition of the set's 64 px eval view (centre crops of every image), the most eq. 4.12 can give it under
each model.objective.negatives pool, over every critic (misseg.diagnostics.ceiling: -2 log 2 = -1.386 for a partition
the pool's negatives share, 0 for one they never share). Rows: the classes; K-means on RGB (K clusters, fitted on
the same pixels); K horizontal bands of equal height (rows); K bands of a random axis and label order in each image
(an equal split of every image that follows nothing, seeded); whole images (image n labelled n mod K: the
image-labelling shortcut of sections 12, 17 and 31); then each checkpoint's argmax-p' clusters; with a checkpoint on
a timm body, K-means on that body's map (10 seedings, upsampled as the K-means baseline is; the row says "frozen" as
every run it was made for froze it, a trainable body gives its trained map). Each row's mIoU
(Hungarian-matched to the classes on the same pixels) is printed beside it, for reading, not for choosing. K: the
checkpoints' (all the same), else --K, else the number of classes. Pixels the masks ignore are left out of every row.
--correspondence W,...: a second table, the most of eq. 4.12 + W x the correspondence term (section 28's
`model.objective.correspondence_weight`) for each partition, on L's grid in the seeded batches of 16 the bound sees
(pools within the batch), with each position's correspondence read as in training from the frozen body that the
first checkpoint keeps (model/reference=encoder_body), and the share of positions whose correspondence shares
their cluster. The partitions are read on L's grid at its cells' centres. --partners set: each image's other image is
its nearest over the whole set (STEGO's k = 1 nearest neighbour, in the same mean-pooled body features) instead of
the nearest of its batch, the pools of negatives unchanged.
Why: a pool rewards the partitions whose negatives rarely share the anchor's cluster; whether the classes are among
the best it can pay for is a property of the set and the pool, which this reads without training anything. A run's
own bound on the same view (pools.py) against its clusters' ceiling says how much of its partition its critic reads.
"""

from __future__ import annotations

import torch
from _cli import (  # experiments/scale/_cli.py: DATA_DIR CKPT... and the one-line errors
    add_checkpoints,
    add_data,
    body_kmeans,
    body_maps,
    cluster_maps,
    column_bands,
    eval_images,
    eval_view,
    miou,
    rgb_kmeans,
    row_bands,
    run,
)

from misseg.diagnostics.ceiling import POOLS, bound_ceiling
from misseg.diagnostics.features import has_body
from misseg.diagnostics.shortcut import seeded_index_batches
from misseg.lit.build import load_module
from misseg.objectives.mi import correspondences
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/ceiling.py"


def random_bands(K: int, N: int, H: int, W: int, seed: int = 0) -> torch.Tensor:
    """(N, H, W): each image cut into K bands of equal size along a random axis, the bands' labels in a random order."""
    gen = torch.Generator().manual_seed(seed)
    rows, cols = row_bands(K, N, H, W), column_bands(K, N, H, W)
    vertical = torch.rand(N, generator=gen) < 0.5
    bands = torch.where(vertical[:, None, None], cols, rows)
    order = torch.stack([torch.randperm(K, generator=gen) for _ in range(N)])  # (N, K): one relabelling per image
    return order.gather(1, bands.flatten(1)).view(N, H, W)


def on_grid(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) labels read at the centres of the cells of a U x V grid -> (N, U, V)."""
    (H, W), (U, V) = labels.shape[-2:], size
    rows, cols = torch.arange(U) * H // U + H // (2 * U), torch.arange(V) * W // V + W // (2 * V)
    return labels[:, rows][:, :, cols]


def set_partners(maps: torch.Tensor) -> torch.Tensor:
    """(N,) each image's partner over the whole set, from `body_maps`' (N, C, U, V): the other image whose mean-pooled
    body feature is closest in cosine (`correspondences`' rule, every image a candidate, not the 15 others of its
    batch)."""
    g = torch.nn.functional.normalize(maps.mean((2, 3)), dim=1)
    sim = g @ g.T
    sim.fill_diagonal_(float("-inf"))
    return sim.argmax(1)


def correspondence_rows(
    module, x: torch.Tensor, partitions: dict, weights: list[float], partners: str = "batch"
) -> None:
    """The second table (module docstring): per partition, the share of positions whose correspondence shares their
    cluster, then the ceiling of eq. 4.12 + W x the correspondence term for own_image, mixed, mixed_balanced and heads
    (under heads eq. 4.12 pays every partition the same, so the correspondences alone rank them). partners: "batch"
    (training's rule: the nearest other image of the batch) or "set" (the nearest other image of the whole set,
    STEGO's k = 1 nearest neighbour); the pools of negatives stay within the batch."""
    pools = ("own_image", "mixed", "mixed_balanced", "heads")
    cols = [f"{p}, W = {w:g}" for p in pools for w in weights]
    print("\n| partition | correspondence shares the cluster | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    batches = seeded_index_batches(len(x))  # the batches of pools.py and shortcut.py
    maps = body_maps(module, x) if partners == "set" else None
    whole = None if maps is None else set_partners(maps)
    grids, matches = [], []
    for idx in batches:
        with torch.no_grad():
            L, _ = module.model(x[idx])
            body = module.model.encoder.kept_body
            if body is None:
                raise ValueError(
                    "CKPT: the first checkpoint keeps no body features; pass one trained with correspondences"
                )
            if whole is None:
                partner, match = correspondences(body)
                partner = idx[partner]  # indices into the set
            else:
                partner = whole[idx]
                both = torch.cat([maps[idx], maps[partner]])  # image b's partner is image b + len(idx)
                _, match = correspondences(both, partner=torch.arange(len(both)).roll(-len(idx)))
                match = match[: len(idx)]
        grids.append(L.shape[-2:])
        matches.append((partner, match))
    for name, (labels, K) in partitions.items():
        agree, cells = 0.0, {c: 0.0 for c in cols}
        for idx, size, (partner, match) in zip(batches, grids, matches, strict=True):
            lab = on_grid(labels[idx], tuple(size))
            partner_labels = on_grid(labels[partner], tuple(size)).flatten(1).gather(1, match).view_as(lab)
            agree += float(((partner_labels == lab) & (lab >= 0)).sum() / (lab >= 0).sum()) * len(idx)
            for p in pools:
                for w in weights:
                    cells[f"{p}, W = {w:g}"] += bound_ceiling(lab, K, p, partner_labels, w) * len(idx)
        n = sum(len(idx) for idx in batches)
        print(f"| {name} | {agree / n:.3f} | " + " | ".join(f"{cells[c] / n:.3f}" for c in cols) + " |", flush=True)


def table(
    root: str, ckpts: list[str], K: int | None, weights: list[float] | None = None, partners: str = "batch"
) -> None:
    data = eval_view(root)
    x, _, gt = eval_images(data)
    modules = [load_module(c).eval() for c in ckpts]
    Ks = {m.model.K for m in modules}
    if len(Ks) > 1:
        raise ValueError(f"CKPT: the checkpoints have different K ({sorted(Ks)}); pass checkpoints of one K")
    K = Ks.pop() if Ks else (K or data.num_classes)
    N, _, H, W = x.shape
    ignored = gt < 0
    partitions = {
        "classes": (gt, data.num_classes),
        "K-means RGB": (rgb_kmeans(x, K), K),
        "rows (K bands)": (row_bands(K, N, H, W), K),
        "K bands, random axis and order per image": (random_bands(K, N, H, W), K),
        "whole images (image n: label n mod K)": ((torch.arange(N) % K)[:, None, None].expand(N, H, W), K),
        **{c: (cluster_maps(m, x), K) for c, m in zip(ckpts, modules, strict=True)},
    }
    if modules and has_body(modules[0]):
        partitions["K-means on the frozen body (10 seedings)"] = (body_kmeans(modules[0], x, K), K)
    partitions = {name: (labels.masked_fill(ignored, -1), k) for name, (labels, k) in partitions.items()}
    print("| partition | K | mIoU (labels: evaluation only) | " + " | ".join(POOLS) + " |")
    print("|---" * (len(POOLS) + 3) + "|")
    valid = ~ignored
    for name, (labels, k) in partitions.items():
        cells = " | ".join(f"{bound_ceiling(labels, k, p):.3f}" for p in POOLS)
        print(f"| {name} | {k} | {miou(labels[valid], gt[valid], k, data.num_classes):.3f} | {cells} |", flush=True)
    if weights:
        correspondence_rows(modules[0], x, partitions, weights, partners)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_data(ap)
    add_checkpoints(ap, help="checkpoints whose clusters get a row each (none: the reference rows only)", nargs="*")
    ap.add_argument("--K", type=int, default=None, help="clusters of the reference rows without checkpoints")
    ap.add_argument("--correspondence", default="", help="weights W,... of the second table (needs a CKPT)")
    ap.add_argument(
        "--partners",
        choices=("batch", "set"),
        default="batch",
        help="the second table's other image: the nearest of the batch (training's rule) or of the whole set",
    )
    args = ap.parse_args(argv)
    if args.K is not None and args.K < 2:
        ap.error(f"--K {args.K}: use at least 2 clusters")
    try:
        weights = [float(w) for w in args.correspondence.split(",")] if args.correspondence else []
    except ValueError:
        ap.error(f"--correspondence {args.correspondence}: use weights >= 0 separated by commas, e.g. 0,1,4")
    if any(w < 0 for w in weights):
        ap.error(f"--correspondence {args.correspondence}: use weights >= 0 separated by commas, e.g. 0,1,4")
    if weights and not args.ckpts:
        ap.error("--correspondence needs a CKPT trained with correspondences (its frozen body reads them)")
    run(PROG, table, args.data, args.ckpts, args.K, weights, args.partners)


if __name__ == "__main__":
    main()
