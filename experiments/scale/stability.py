"""A label-free choice among a lever study's settings: how much the seeds' clusterings agree (stability), beside mIoU.

Usage: python experiments/scale/stability.py RUNS_DIR SET --names mi_a,mi_b[,...] [--seeds 0,1,2] [--study small]
       [--step 450] [--images 256]
Reads RUNS/STUDY/SET/seedS/NAME/checkpoints/stepSTEP.ckpt (lever_critic.sh's runs), predicts a seeded subset of
the images of the run's own data.root (config_resolved.yaml; 256 images, the same for every name and seed, about 1M
pixels: --images 0 for all) on the scale study's 64 px eval view, and scores each name by the mean
NMI between the cluster maps of every pair of its seeds. Nothing of that uses a label: a user can pick the most
stable setting (Lange et al. 2004, "Stability-based validation of clustering solutions") without any. The mIoU
column (RUN/metrics.json, Hungarian-matched to the classes) is there to judge the rule, not part of it.
Two things stability rewards besides the classes are printed beside it, also label-free: collapse (one cluster in
every seed is perfectly stable: balance = entropy of the cluster sizes / log K) and position (the same bands in
every image: NMI with K horizontal bands, as agreement.py's rows). Against position, a second score: stability given
the row (the mean over seed pairs of I(A; B | pixel row) / mean(H(A | row), H(B | row))), where the same bands from
every seed agree on nothing and only what the seeds cut alike within a row counts. Against the frozen body, a third
(checkpoints on a timm body only, "-" otherwise): stability given K-means on that body's map (the same K, 10
seedings, fitted once per set on the first such checkpoint's body: the partition section 36 found the correspondences
pay most, the same for every seed since the body is frozen), with the clusters' NMI with it; seeds pulled to that one
partition agree without it saying anything about the classes, as bands do.
Last lines: the label-free picks (the most stable name, given the row, given the body), the label-selected
best, and Spearman's rank correlation between each stability and mean mIoU over the names.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path

import torch
from _cli import body_kmeans, cluster_maps, eval_view, row_bands, run  # experiments/scale/_cli.py
from levers_table import cell  # mean ± std over the seeds, "-" for none
from scipy.stats import spearmanr

from misseg.diagnostics.features import has_body
from misseg.diagnostics.shortcut import conditional_nmi, normalized_entropy, normalized_mutual_information
from misseg.lit.build import load_module
from misseg.runs.errors import ConfigError, OneLineArgumentParser, RunDirError, existing_dir

PROG = "experiments/scale/stability.py"


def pairwise_nmi(labellings: list[torch.Tensor], given: torch.Tensor | None = None) -> float:
    """Mean NMI over every pair of labellings of the same pixels (1 = every pair the same partition up to names);
    with `given`, the NMI given that labelling (conditional_nmi)."""
    pairs = list(itertools.combinations(labellings, 2))
    if given is None:
        return sum(normalized_mutual_information(a, b) for a, b in pairs) / len(pairs)
    return sum(conditional_nmi(a, b, given) for a, b in pairs) / len(pairs)


def data_root(run_dir: Path) -> str:
    """The data.root a run was trained on (its config_resolved.yaml)."""
    from omegaconf import OmegaConf

    cfg = run_dir / "config_resolved.yaml"
    if not cfg.is_file():
        raise RunDirError(f"{cfg}: no such file; pass a run folder that misseg.train wrote")
    return str(OmegaConf.load(cfg).data.root)


def table(runs: str, study: str, set_name: str, names: list[str], seeds: list[str], step: int, n_images: int) -> None:
    print(
        "| set | run | seeds | stability: NMI between seeds | stability given the row | stability given the body's "
        "K-means | balance of the clusters | NMI(clusters, rows) | NMI(clusters, body's K-means) "
        "| clusters mIoU (labels: evaluation only) |"
    )
    print("|---" * 10 + "|")
    images: dict[str, torch.Tensor] = {}  # data.root -> the set's eval view, loaded once
    bodies: dict[str, torch.Tensor] = {}  # data.root -> K-means on the frozen body's map, fitted once
    scored = []
    for name in names:
        dirs = [Path(runs) / study / set_name / f"seed{s}" / name for s in seeds]
        ckpts = [d / "checkpoints" / f"step{step:05d}.ckpt" for d in dirs]
        found = [(d, c) for d, c in zip(dirs, ckpts, strict=True) if c.is_file()]
        if len(found) < 2:
            print(f"| {set_name} | {name} | {len(found)} | - | - | - | - | - | - | - |")
            continue
        roots = {data_root(d) for d, _ in found}
        if len(roots) > 1:
            raise ConfigError(f"{name}: its seeds were trained on different data.root ({', '.join(sorted(roots))})")
        root = roots.pop()
        if root not in images:
            x = torch.cat([b["image"] for b in eval_view(root).val_dataloader()])
            if 0 < n_images < len(x):  # a seeded subset: the same images for every name and seed
                x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n_images]]
            images[root] = x
        x = images[root]
        modules = [load_module(str(c)).eval() for _, c in found]
        clusters = [cluster_maps(m, x) for m in modules]
        K = modules[0].model.K
        N, H, W = clusters[0].shape
        rows = row_bands(K, N, H, W)
        stability = pairwise_nmi(clusters)
        given_row = pairwise_nmi(clusters, row_bands(H, N, H, W))  # H bands of one pixel row each
        given_body = on_body = math.nan
        if has_body(modules[0]):
            if root not in bodies:
                bodies[root] = body_kmeans(modules[0], x, K)
            given_body = pairwise_nmi(clusters, bodies[root])
            on_body = statistics.mean(normalized_mutual_information(c, bodies[root]) for c in clusters)
        balance = statistics.mean(normalized_entropy(c, K) for c in clusters)
        on_rows = statistics.mean(normalized_mutual_information(c, rows) for c in clusters)
        metrics = [d / "metrics.json" for d, _ in found]
        miou = [json.loads(f.read_text())["miou"] for f in metrics if f.is_file()]
        cells = " | ".join(
            "-" if math.isnan(v) else f"{v:.3f}" for v in (stability, given_row, given_body, balance, on_rows, on_body)
        )
        print(f"| {set_name} | {name} | {len(found)} | {cells} | {cell(miou)} |", flush=True)
        if miou:
            scored.append((name, statistics.mean(miou), stability, given_row, given_body))
    if not scored:
        return
    print()
    rules = [(2, "stability", "most stable"), (3, "stability given the row", "most stable given the row")]
    if not any(math.isnan(r[4]) for r in scored):  # every name has the body: the third rule compares like with like
        rules.append((4, "stability given the body's K-means", "most stable given the body's K-means"))
    for column, _, rule in rules:
        pick = max(scored, key=lambda r: r[column])
        print(f"label-free pick ({rule}): {pick[0]}, mIoU {pick[1]:.3f}")
    best = max(scored, key=lambda r: r[1])
    print(f"label-selected best (highest mean mIoU): {best[0]}, mIoU {best[1]:.3f}")
    for column, score, _ in rules:
        rho = spearmanr([r[column] for r in scored], [r[1] for r in scored]).statistic if len(scored) > 2 else math.nan
        print(f"Spearman's rank correlation, {score} vs mean mIoU over {len(scored)} runs: {rho:.2f}")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("runs", metavar="RUNS_DIR", type=existing_dir("pass the scale study's runs folder"))
    ap.add_argument("set", metavar="SET", help="a set's folder name under RUNS_DIR/STUDY (e.g. camvid)")
    ap.add_argument("--names", required=True, help="comma-separated run names (lever_critic.sh's)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (at least two found per name)")
    ap.add_argument("--study", default="small", help="RUNS_DIR's subfolder (small: the 450-step runs)")
    ap.add_argument("--step", type=int, default=450, help="the checkpoint's step")
    ap.add_argument("--images", type=int, default=256, help="a seeded subset of the set's images (0: all of them)")
    args = ap.parse_args(argv)
    where = Path(args.runs) / args.study / args.set
    if not where.is_dir():
        ap.error(f"{where}: no such folder; pass RUNS_DIR, SET and --study of runs that exist")
    run(
        PROG,
        table,
        args.runs,
        args.study,
        args.set,
        args.names.split(","),
        args.seeds.split(","),
        args.step,
        args.images,
    )


if __name__ == "__main__":
    main()
