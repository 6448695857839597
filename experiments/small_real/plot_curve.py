"""mIoU vs training time from curve.sh's runs (time = wall clock of the whole run: start-up, training and
evaluation): one panel per dataset, one line per method, K-means and the trivial baseline (from the table's
runs, when given) as horizontal lines. Writes figures/curve.png and prints the points as a markdown table.

Usage: python experiments/small_real/plot_curve.py CURVE_DIR [TABLE_DIR]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from summarize import load as load_table  # noqa: E402  (this folder is on sys.path when run as a script)

from misseg.runs.errors import OneLineArgumentParser  # noqa: E402

PROG = "experiments/small_real/plot_curve.py"

FIGURE = Path(__file__).parent / "figures" / "curve.png"


def load(curve_dir: Path) -> dict:
    """{dataset: {method: [(steps, seconds, miou), ...]}} sorted by steps."""
    points: dict = defaultdict(lambda: defaultdict(list))
    for path in sorted(curve_dir.glob("steps*/*/seed*/*/metrics.json")):
        run = path.parent
        steps = int(run.parts[-4].removeprefix("steps"))
        seconds = json.loads((run / "run_info.json").read_text()).get("duration_s")
        if seconds is None:  # metrics written, but the run was stopped before it recorded its duration
            print(f"skipped {run}: no duration_s in run_info.json", file=sys.stderr)
            continue
        points[run.parts[-3]][run.parts[-1]].append((steps, seconds, json.loads(path.read_text())["miou"]))
    return {ds: {m: sorted(v) for m, v in methods.items()} for ds, methods in points.items()}


def baselines(table_dir: Path | None, dataset: str) -> dict[str, float]:
    """mean mIoU over seeds of the table's kmeans and trivial runs for this dataset."""
    rows = [r for r in load_table(str(table_dir)) if r["dataset"] == dataset] if table_dir else []
    values = {m: [r["miou"] for r in rows if r["method"] == m] for m in ("kmeans", "trivial")}
    return {m: sum(v) / len(v) for m, v in values.items() if v}


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("curve_dir", metavar="CURVE_DIR", help="curve.sh's output folder")
    ap.add_argument("table_dir", metavar="TABLE_DIR", nargs="?", help="run.sh's output folder (the baseline lines)")
    args = ap.parse_args(argv)
    curve_dir, table_dir = args.curve_dir, args.table_dir
    if not Path(curve_dir).is_dir():
        ap.error(f"CURVE_DIR {curve_dir}: no such directory; pass the output folder of experiments/small_real/curve.sh")
    if table_dir and not Path(table_dir).is_dir():
        ap.error(f"TABLE_DIR {table_dir}: no such directory; pass run.sh's output folder, or leave it out")
    points = load(Path(curve_dir))
    if not points:
        ap.error(f"CURVE_DIR {curve_dir}: no steps*/<dataset>/seed*/<method>/metrics.json; run curve.sh first")
    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 3.6), squeeze=False)
    print("| dataset | method | steps | time (s) | mIoU |\n|---|---|---|---|---|")
    for ax, (dataset, methods) in zip(axes[0], sorted(points.items()), strict=True):
        for method, rows in sorted(methods.items()):
            ax.plot([r[1] for r in rows], [r[2] for r in rows], "o-", label=method)
            for steps, seconds, miou in rows:
                ax.annotate(str(steps), (seconds, miou), fontsize=7, xytext=(3, 3), textcoords="offset points")
                print(f"| {dataset} | {method} | {steps} | {seconds:.0f} | {miou:.3f} |")
        styles = {"kmeans": "--", "trivial": ":"}
        for name, value in baselines(Path(table_dir) if table_dir else None, dataset).items():
            ax.axhline(value, color="gray", linestyle=styles[name], label=f"{name} (mean)")
        ax.set(title=dataset, xlabel="wall-clock seconds, 2 CPU cores (labels: steps)", ylabel="mIoU", xscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=120)
    print(f"\nwrote {FIGURE}")


if __name__ == "__main__":
    main()
