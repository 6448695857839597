"""Table of kmeans_restarts.sh: per set and run name, mean +- std over the seeds of the method's clusters and of
K-means on L with one seeding (the earlier diag/step00450 probes) and with 10 restarts (diag/restarts), each on the
probe's test half, for the trained run, its random init and (runs from a weights file) its initial weights; K-means
on the frozen ImageNet body's own map (body_kmeans.sh, RUNS_DIR/bodyref: no training, the seeds' splits); the
set's trivial, K-means RGB (RUNS_DIR/baselines, and a second baselines folder run with restarts) and K-means on the
frozen ImageNet network (baselines_backbone.sh: every image, K-means RGB's protocol) beside them. A set with no run
of the names but with those references gets one row, run "-".

Usage: python experiments/scale/kmeans_restarts_table.py RUNS_DIR SET [SET ...] [--names mi,iic]
       [--baselines DIR]   (baselines.sh's output with kmeans.restarts=10; default RUNS_DIR/baselines only)
"""

from __future__ import annotations

import json
from pathlib import Path

from levers_table import cell as mean_std  # experiments/scale/levers_table.py: mean ± std, a run's mIoU
from levers_table import miou

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/kmeans_restarts_table.py"


def probe_miou(path: Path, key: str) -> float | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("probe", {}).get(key, {}).get("miou")


def draws(paths: list[Path]) -> list[Path]:
    """The random-init evaluations among `paths`, one per seeded draw ("weights": "random init (seed N), ...")."""
    seen: dict[str, Path] = {}
    for p in paths:
        if p.is_file():
            seen.setdefault(json.loads(p.read_text())["weights"].split(")")[0], p)
    return list(seen.values())


def cell(values: list[float | None]) -> str:
    """mean ± std of the values that exist, with their number when there are several."""
    values = [v for v in values if v is not None]
    return mean_std(values) + (f" (n={len(values)})" if len(values) > 1 else "")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("runs", metavar="RUNS_DIR", type=existing_dir("the RUNS folder of the scale scripts"))
    ap.add_argument("sets", metavar="SET", nargs="+", help="set names (RUNS_DIR/small/SET)")
    ap.add_argument("--names", default="mi,iic", help="comma-separated run names (default mi,iic)")
    ap.add_argument("--baselines", type=existing_dir("baselines.sh's output folder"), default=None)
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    print(
        "| set | run | clusters | K-means on L, 1 seeding | K-means on L, 10 restarts | random init: 1 seeding "
        "| random init: 10 restarts | initial weights: 10 restarts | K-means on the body | trivial "
        "| K-means RGB (1 / 10 restarts) | K-means on the network, all images |"
    )
    print("|---" * 12 + "|")
    for s in args.sets:
        base = runs / "baselines" / s
        rgb10 = miou(Path(args.baselines) / s / "kmeans" / "metrics.json") if args.baselines else None
        rgb1 = miou(base / "kmeans" / "metrics.json")
        rgb = (f"{rgb1:.3f}" if rgb1 is not None else "-") + " / " + (f"{rgb10:.3f}" if rgb10 else "-")
        trivial = miou(base / "trivial" / "metrics.json")
        body = [runs / "bodyref" / s / f"seed{seed}" / "metrics.json" for seed in range(3)]
        network = miou(base / "kmeans_backbone" / "metrics.json")
        tail = [
            cell([probe_miou(p, "kmeans") for p in body]),
            f"{trivial:.3f}" if trivial is not None else "-",
            rgb,
            f"{network:.3f}" if network is not None else "-",
        ]
        printed = False
        for name in args.names.split(","):
            dirs = [runs / "small" / s / f"seed{seed}" / name / "diag" for seed in range(3)]
            old = [d / "step00450" / s / "metrics.json" for d in dirs]
            new = [d / "restarts" / "step00450" / s / "metrics.json" for d in dirs]
            if not any(p.is_file() for p in new):
                continue
            # the random inits: one per distinct seeded draw (several runs of a name evaluated the same one)
            rand_old = draws([d / "random" / s / "metrics.json" for d in dirs])
            rand_new = draws([d / "restarts" / "random" / s / "metrics.json" for d in dirs])
            initial = [d / "restarts" / "initial" / s / "metrics.json" for d in dirs]
            row = [
                cell([probe_miou(p, "unsupervised") for p in new]),
                cell([probe_miou(p, "kmeans") for p in old]),
                cell([probe_miou(p, "kmeans") for p in new]),
                cell([probe_miou(p, "kmeans") for p in rand_old]),
                cell([probe_miou(p, "kmeans") for p in rand_new]),
                cell([probe_miou(p, "kmeans") for p in initial]),
                *tail,
            ]
            print(f"| {s} | {name} | " + " | ".join(row) + " |")
            printed = True
        if not printed and (network is not None or any(p.is_file() for p in body)):
            print(f"| {s} | - | " + " | ".join(["-"] * 6 + tail) + " |")


if __name__ == "__main__":
    main()
