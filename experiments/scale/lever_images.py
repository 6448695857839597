"""Part 3's data-scale question put to a lever setting: mIoU vs number of training images. For each SET, one point
per training set whose runs of NAME were read on SET (RUNS/small/TRAIN/seedS/NAME: its own metrics.json when TRAIN is
SET, else its evaluation there, crf_kept.sh's third ENTRIES word), mean ± std over the seeds found; a markdown table
on stdout and a picture (one panel per SET). Solid: the clusters; dashed: the linear probe; green: the initial
weights' probe (crf_kept.sh INITIAL=true, on whichever training set's runs it was measured: the seed's draw is the
same for all) and the probe target 0.05 above it; grey: K-means RGB and the trivial map (baselines.sh), the cluster
targets' reference. Labels for evaluation only.

Usage: python experiments/scale/lever_images.py RUNS_DIR NAME --sets coco_persons,human_seg
       [--train-sets coco_persons,human_seg,persons400,persons1400] [--seeds 0,1,2] [--figure PATH]
"""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from levers_table import add_runs, cell, col, gather  # noqa: E402  (this folder is on sys.path)
from plot import baseline_lines, measured_log_x  # noqa: E402
from summarize import SIZES, baselines  # noqa: E402

from misseg.runs.errors import OneLineArgumentParser  # noqa: E402

PROG = "experiments/scale/lever_images.py"
FIGURE = Path(__file__).parent / "figures" / "lever_images.png"


def points(runs: Path, name: str, s: str, train_sets: list[str], seeds: tuple[str, ...]) -> list[dict]:
    """One point per training set with runs of NAME read on set s: its size and the seeds' gather() rows."""
    out = []
    for train in train_sets:
        rows = []
        for seed in seeds:
            rows += gather(runs / "small" / train / f"seed{seed}" / name, s, elsewhere=train != s)
        if rows:
            out.append({"train": train, "images": SIZES[train], "rows": rows})
    return sorted(out, key=lambda p: p["images"])


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(name: str, found: dict[str, list[dict]]) -> str:
    lines = [
        f"{name}: mIoU vs training images (mean ± std over the seeds)",
        "",
        "| set | trained on | images | seeds | clusters | + CRF | linear probe | initial weights' probe "
        "| per seed: clusters |",
        "|---" * 9 + "|",
    ]
    for s, pts in found.items():
        for p in pts:
            rows, n = p["rows"], len(p["rows"])
            lines.append(
                f"| {s} | {p['train']} | {p['images']} | {n} | {cell([r[0] for r in rows])} "
                f"| {cell([r[3] for r in rows if r[3] is not None], n)} | {cell(col(rows, 'linear'), n)} "
                f"| {cell(col(rows, 'linear', 4), n)} | {', '.join(f'{r[0]:.3f}' for r in rows)} |"
            )
    return "\n".join(lines)


def plot(name: str, found: dict[str, list[dict]], base: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(found), figsize=(4.5 * len(found), 3.6), squeeze=False)
    for ax, (s, pts) in zip(axes[0], found.items(), strict=True):
        xs = [p["images"] for p in pts]
        for label, values, style in (
            ("clusters", lambda rows: [r[0] for r in rows], "o-"),
            ("linear probe", lambda rows: col(rows, "linear"), "s--"),
        ):
            measured = [(x, values(p["rows"])) for x, p in zip(xs, pts, strict=True)]
            kept = [(x, _mean_std(v)) for x, v in measured if v]
            if kept:
                ax.errorbar([k[0] for k in kept], [k[1][0] for k in kept], yerr=[k[1][1] for k in kept],
                            fmt=style, capsize=3, label=label)  # fmt: skip
        # the initial weights are the seed's draw whatever the training set: one reference line, wherever measured
        initial = [v for p in pts for v in col(p["rows"], "linear", 4)]
        if initial:
            ax.axhline(statistics.mean(initial), color="C2", linestyle=":", label="initial weights' probe")
            ax.axhline(statistics.mean(initial) + 0.05, color="C2", linestyle="-.", label="probe target (+0.05)")
        baseline_lines(ax, base.get(s, {}))
        measured_log_x(ax, xs)
        ax.set(title=f"scored on {s}", xlabel="training images", ylabel="mIoU")
        ax.legend(fontsize=6)
    fig.suptitle(name, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_runs(ap)
    ap.add_argument("name", metavar="NAME", help="the run name (RUNS_DIR/small/TRAIN/seedS/NAME)")
    ap.add_argument("--sets", required=True, help="comma-separated sets scored, one panel each")
    ap.add_argument("--train-sets", default=",".join(SIZES), help="comma-separated training sets (default: all)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--figure", type=Path, default=FIGURE, help=f"the picture (default {FIGURE})")
    args = ap.parse_args(argv)
    train_sets = args.train_sets.split(",")
    unknown = [t for t in train_sets if t not in SIZES]
    if unknown:
        ap.error(f"--train-sets {unknown[0]}: no image count known; use one of {', '.join(SIZES)}")
    if not args.figure.parent.is_dir():
        ap.error(f"--figure {args.figure}: no such directory {args.figure.parent}; create it or pass another path")
    runs, seeds = Path(args.runs), tuple(args.seeds.split(","))
    found = {s: pts for s in args.sets.split(",") if (pts := points(runs, args.name, s, train_sets, seeds))}
    print(table(args.name, found))
    if found:
        plot(args.name, found, baselines(runs), args.figure)


if __name__ == "__main__":
    main()
