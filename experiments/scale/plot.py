"""Figures of the scale study from summarize.py's rows: figures/steps.png (mIoU vs training steps on persons1400,
one panel per eval set) and figures/images.png (mIoU at 1,500 steps vs number of training images, one panel per
eval set). Solid: the method's own clusters; dashed: K-means on its features L; grey: K-means RGB and trivial.

Usage: python experiments/scale/plot.py [RUNS]   (default /work/exp_runs/scale)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from summarize import SIZES, baselines, datascale_rows, points, runs_argument  # noqa: E402  (this folder is on sys.path)

PROG = "experiments/scale/plot.py"

FIGURES = Path(__file__).parent / "figures"
COLOURS = {"mi_paper": "C0", "iic": "C1", "mi_sobel": "C2"}


def baseline_lines(ax, base: dict) -> None:
    """One set's K-means RGB (dashed) and trivial (dotted) mIoU as grey lines, where baselines() has them."""
    for name, ls in (("kmeans", "--"), ("trivial", ":")):
        if name in base:
            label = "K-means RGB" if name == "kmeans" else name
            ax.axhline(base[name]["miou"], color="gray", linestyle=ls, label=label)


def measured_log_x(ax, xs: list) -> None:
    """A log x axis ticked at the measured points only (log scale's default labels clutter)."""
    ax.set_xscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.minorticks_off()


def _panel(ax, series: dict, base: dict, title: str, xlabel: str, log: bool) -> None:
    for (method, kind), pts in sorted(series.items()):
        pts = sorted(pts)
        style = "o-" if kind == "unsup" else "s--"
        label = method if kind == "unsup" else f"{method}: K-means on L"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=COLOURS.get(method, "C3"), label=label)
    baseline_lines(ax, base)
    ax.set(title=title, xlabel=xlabel, ylabel="mIoU")
    if log:
        measured_log_x(ax, sorted({p[0] for pts in series.values() for p in pts}))
    ax.legend(fontsize=6)


def _series(rows: list[dict], x) -> dict:
    out: dict = {}
    for r in rows:
        for kind in ("unsup", "kmeans_L"):
            if r[kind] is not None:
                out.setdefault((r["method"], kind), []).append((x(r), r[kind]["miou"]))
    return out


def plot(rows: list[dict], base: dict, x, path: Path, title: str, xlabel: str) -> None:
    sets = sorted({r["eval"] for r in rows})
    if not sets:
        return
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    for ax, ev in zip(axes[0], sets, strict=True):
        _panel(ax, _series([r for r in rows if r["eval"] == ev], x), base.get(ev, {}), title.format(ev), xlabel, True)
    fig.tight_layout()
    FIGURES.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    runs = runs_argument(PROG, __doc__, argv)
    base, rows = baselines(runs), points(runs)
    compute = [r for r in rows if r["study"] == "compute"]
    plot(compute, base, lambda r: r["step"], FIGURES / "steps.png",
         "{} (trained on persons1400)", "training steps (batch 16, 64 px)")  # fmt: skip
    # coco_persons: the set every training set holds; human_seg: in persons400 and persons1400
    scale = [r for r in datascale_rows(rows) if r["eval"] in ("coco_persons", "human_seg")]
    plot(scale, base, lambda r: SIZES[r["train"]], FIGURES / "images.png",
         "eval {} (1,500 steps)", "training images (109 / 399 / 1,403)")  # fmt: skip


if __name__ == "__main__":
    main()
