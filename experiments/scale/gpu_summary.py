"""The table of gpu_thesis.sh: per eval set, mIoU of the trivial map, K-means RGB, and each trained run
(unsupervised clusters, linear probe, K-means on L), MI's random-init probe; then steps trained and the oracle test.
With --figure PNG also a picture: the bound during training (MI runs and the oracle's two runs) and, per eval set,
the clusters and probes beside the trivial map and K-means RGB.

Usage: python experiments/scale/gpu_summary.py OUT SET [SET ...] [--runs mi,mi_corr,iic] [--figure PNG]
(OUT: gpu_thesis.sh's WORK, or one seed's folder WORK/seedS of a SEEDS call, whose baselines/ links to WORK's)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from train_curve import block_means  # experiments/scale/train_curve.py

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/gpu_summary.py"
RUNS = ("mi", "mi_corr", "iic")  # the runs gpu_thesis.sh can train (its RUNS)


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def miou(m: dict | None, probe: str | None = None) -> str:
    if m is None:
        return "-"
    if probe is None:
        return f"{m['miou']:.3f}"
    p = m.get("probe", {}).get(probe)
    return f"{p['miou']:.3f}" if p else "-"


def steps(run: Path) -> str:
    f = run / "csv" / "metrics.csv"
    if not f.is_file():
        return "-"
    with open(f) as fh:
        done = [int(r["step"]) for r in csv.DictReader(fh) if r.get("step")]
    info = read(run / "run_info.json") or {}
    return f"{max(done, default=0) + 1} steps in {info.get('duration_s', float('nan')):.0f} s"


def bound_curve(run: Path, block: int = 50) -> tuple[list[int], list[float]]:
    """The logged MI bound (train/mi_step) of a run's csv, as means over blocks of `block` steps (mid-block x)."""
    if not (run / "csv" / "metrics.csv").is_file():
        return [], []
    means = {b: row["train/mi"] for b, row in block_means(run, block).items() if "train/mi" in row}
    return [b * block + block // 2 for b in means], list(means.values())


def figure(out: Path, sets: list[str], path: Path, runs: tuple[str, ...] = RUNS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in (r for r in ("mi", "mi_corr") if r in runs):
        left.plot(*bound_curve(out / r), label=f"{r}: bound (eq. 4.12), training batches")
    o = read(out / "oracle.json") or {}
    for key, name in (("learned", "oracle.py: learned p'"), ("oracle", "oracle.py: p' = the classes")):
        if key in o:
            curve = o[key]["train_curve"]  # [step, bound] pairs
            left.plot([c[0] for c in curve], [c[1] for c in curve], "--", label=name)
    left.set(xlabel="step (batch 64, 128 px)", ylabel="JSD bound (nats)", title="the bound while training")
    left.legend(fontsize=8)
    bars = [  # name, metrics.json's folder under OUT ({s}: the eval set), probe section (None: the top-level mIoU)
        ("trivial", "baselines/{s}/trivial", None),
        ("K-means RGB", "baselines/{s}/kmeans", None),
    ]
    for r, name, suffix, probe in (
        ("mi", "MI clusters", "", "unsupervised"),
        ("mi", "MI probe", "", "linear"),
        ("mi", "MI random-init probe", "_random", "linear"),
        ("mi_corr", "MI + corr. clusters", "", "unsupervised"),
        ("iic", "IIC clusters", "", "unsupervised"),
    ):
        if r in runs:  # a run left out of the call draws no bar
            bars.append((name, f"{r}/eval/{{s}}{suffix}", probe))
    width = 0.8 / len(bars)
    for i, (name, folder, probe) in enumerate(bars):
        # a missing file leaves its bar out (NaN), rather than drawing a score of 0
        cells = [miou(read(out / folder.format(s=s) / "metrics.json"), probe) for s in sets]
        values = [float(v) if v != "-" else float("nan") for v in cells]
        right.bar([j + i * width for j in range(len(sets))], values, width, label=name)
    right.set_xticks([j + 0.4 - width / 2 for j in range(len(sets))], sets)
    right.set(ylabel="mIoU", title="each set's own images (clusters, probes: the probe's test half)")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument(
        "out",
        metavar="OUT",
        type=existing_dir("pass the OUT folder of experiments/scale/gpu_thesis.sh"),
        help="gpu_thesis.sh's output folder",
    )
    ap.add_argument("sets", metavar="SET", nargs="+", help="eval set names (gpu_thesis.sh's EVAL_SETS), one row each")
    ap.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="comma-separated runs to tabulate, of " + ", ".join(RUNS) + " (gpu_thesis.sh's RUNS); default all",
    )
    ap.add_argument("--figure", metavar="PNG", help="also write the curves and bars as a picture here")
    args = ap.parse_args(argv)
    runs = tuple(r for r in args.runs.split(",") if r)
    unknown = [r for r in runs if r not in RUNS]
    if unknown or not runs:
        ap.error(f"--runs {args.runs}: use a comma-separated subset of {','.join(RUNS)}")
    if args.figure and not Path(args.figure).parent.is_dir():
        ap.error(f"--figure {args.figure}: no such directory {Path(args.figure).parent}; create it first")
    out, sets = Path(args.out), args.sets
    header = " | ".join(f"{r}: clusters / probe / K-means on L" for r in runs)
    print(f"| eval set | trivial | K-means RGB | {header} | MI random init: probe |")
    print("|---" * (len(runs) + 4) + "|")
    for s in sets:
        cells = [miou(read(out / "baselines" / s / b / "metrics.json")) for b in ("trivial", "kmeans")]
        for r in runs:
            m = read(out / r / "eval" / s / "metrics.json")
            cells.append(f"{miou(m, 'unsupervised')} / {miou(m, 'linear')} / {miou(m, 'kmeans')}")
        cells.append(miou(read(out / "mi" / "eval" / f"{s}_random" / "metrics.json"), "linear"))
        print(f"| {s} | " + " | ".join(cells) + " |")
    print()
    for r in runs:
        m = read(out / r / "metrics.json")
        print(f"- {r}: {steps(out / r)}; mIoU on the training set (all images, last weights): {miou(m)}")
    o = read(out / "oracle.json")
    if o:
        learned, oracle = o["learned"], o["oracle"]
        print(
            f"- oracle test ({o['setting']} setting, {learned['steps']} / {oracle['steps']} steps): bound with the "
            f"learned p' {learned['eval_bound']:.3f}, with p' = the classes {oracle['eval_bound']:.3f}"
        )
    if args.figure:
        figure(out, sets, Path(args.figure), runs)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
