"""Markdown tables of every metrics.json under a results dir (OUT/<dataset>/seed<S>/<method>/metrics.json).

Default: one row per run (dataset | method | seed | PA | mIoU | time). --mean: one row per dataset, one column
per method, cells "PA / mIoU +- std (n seeds)" with the mean over the seeds found (std over seeds, n >= 2).
--methods a,b,c picks and orders the columns of --mean. --levers: levers.sh's screen, one row per lever, one
column per dataset, cells "mIoU (change vs mi_paper of the same seed)", for --seed (default 0).
Usage: python experiments/small_real/summarize.py [RESULTS_DIR] [--mean] [--methods a,b] [--levers]
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/small_real/summarize.py"


def load(root: str) -> list[dict]:
    rows = []
    for path in sorted(Path(root).glob("*/seed*/*/metrics.json")):
        run = path.parent
        metrics = json.loads(path.read_text())
        info = run / "run_info.json"
        seconds = json.loads(info.read_text()).get("duration_s") if info.exists() else None
        if seconds is None:  # the K-means CLI reports fit + eval time in metrics.json
            seconds = (metrics.get("fit_seconds") or 0) + (metrics.get("eval_seconds") or 0)
        dataset, seed, method = run.parts[-3], run.parts[-2], run.parts[-1]
        rows.append(dict(dataset=dataset, seed=int(seed[4:]), method=method, pa=metrics["pa"],
                         miou=metrics["miou"], seconds=seconds))  # fmt: skip
    return rows


def per_run(rows: list[dict]) -> str:
    lines = ["| dataset | method | seed | PA | mIoU | time (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['seed']} | {r['pa']:.3f} | {r['miou']:.3f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def mean_table(rows: list[dict], methods: list[str] | None = None) -> str:
    cells: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[r["dataset"]][r["method"]].append(r)
    methods = methods or sorted({r["method"] for r in rows})
    lines = ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for dataset in sorted(cells):
        out = []
        for method in methods:
            runs = cells[dataset].get(method, [])
            if not runs:
                out.append("-")
                continue
            pa, miou = [r["pa"] for r in runs], [r["miou"] for r in runs]
            spread = f" ± {statistics.stdev(miou):.3f}" if len(runs) > 1 else ""
            seconds = statistics.mean(r["seconds"] for r in runs)
            out.append(
                f"{statistics.mean(pa):.3f} / {statistics.mean(miou):.3f}{spread} (n={len(runs)}, {seconds:.0f} s)"
            )
        lines.append(f"| {dataset} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def lever_table(rows: list[dict], seed: int = 0) -> str:
    by = {(r["dataset"], r["method"]): r["miou"] for r in rows if r["seed"] == seed}
    datasets = sorted({d for d, m in by if m.startswith("lever_")})
    levers = ["mi_paper"] + sorted({m for _, m in by if m.startswith("lever_")}, key=lambda m: m.lower())
    lines = [f"| lever (seed {seed}) | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for lever in levers:
        out = []
        for d in datasets:
            value, base = by.get((d, lever)), by.get((d, "mi_paper"))
            if value is None:
                out.append("-")
            elif lever == "mi_paper" or base is None:
                out.append(f"{value:.3f}")
            else:
                out.append(f"{value:.3f} ({value - base:+.3f})")
        lines.append(f"| {lever.removeprefix('lever_')} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("root", metavar="RESULTS_DIR", nargs="?", default="logs/small_real", help="default logs/small_real")
    ap.add_argument("--mean", action="store_true", help="one row per dataset, one column per method")
    ap.add_argument("--methods", default=None, help="comma-separated columns of --mean, in this order")
    ap.add_argument("--levers", action="store_true", help="levers.sh's screen, one row per lever")
    ap.add_argument("--seed", type=int, default=0, help="the seed of --levers (default 0)")
    args = ap.parse_args(argv)
    if not Path(args.root).is_dir():
        ap.error(f"RESULTS_DIR {args.root}: no such directory; pass the OUT folder of run.sh or levers.sh")
    rows = load(args.root)
    if args.levers:
        print(lever_table(rows, args.seed))
        return
    print(mean_table(rows, args.methods.split(",") if args.methods else None) if args.mean else per_run(rows))


if __name__ == "__main__":
    main()
