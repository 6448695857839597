"""The probes along training, mean +- std over seeds: for each run name and set under a study folder, the clusters,
K-means on L and the linear probe at every checkpoint evaluated with probe=all (RUN/diag/stepNNNNN/SET, all on the
probe's test half), and the initial weights' linear probe as step 0 (RUN/diag/initial/SET, crf_kept.sh INITIAL=true).
A markdown table and, with --figure, a PNG: is the representation still gaining where the clusters are?

Usage: python experiments/scale/step_curve.py STUDY_DIR [--names mi_x,iic_y] [--figure PNG]   (STUDY_DIR holds
       seedS/NAME runs, e.g. RUNS/small900/coco_stuff15; --names keeps those runs, in that order, one panel each, on
       one mIoU scale)
"""

from __future__ import annotations

import re
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path

from levers_table import cell  # experiments/scale/levers_table.py: mean ± std, "(n of N)" when seeds are missing
from probes import rows  # experiments/scale/probes.py: every RUN/diag/*/SET's three figures

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/step_curve.py"
KEYS = (("clusters", "clusters"), ("kmeans", "K-means on L"), ("linear", "linear probe"))


def step_of(name: str) -> int | None:
    """A diag folder's step: stepNNNNN -> NNNNN, initial -> 0; None for any other evaluation (random, _crf, ...)."""
    if name == "initial":
        return 0
    m = re.fullmatch(r"step(\d+)", name)
    return int(m.group(1)) if m else None


def curves(root: Path, names: list[str] | None = None) -> dict[tuple[str, str], dict[int, dict[str, list[float]]]]:
    """(run name, set) -> step -> figure -> the seeds' values (each seedS/NAME run under root counts once); names:
    only those runs, in that order (None: every run, sorted)."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows(root):
        step = step_of(r["step"])
        if step is None:
            continue
        for key, _ in KEYS:
            if r[key] is not None:
                out[Path(r["run"]).name, r["set"]][step][key].append(r[key])
    return {k: out[k] for k in sorted(out)} if names is None else kept(out, names)


def kept(data: dict, names: list[str]) -> dict:
    """The curves of the runs named, in that order (a run's sets sorted)."""
    return {k: data[k] for k in sorted((k for k in data if k[0] in names), key=lambda k: (names.index(k[0]), k[1]))}


def table(data: dict) -> str:
    header = "| run | set | step | seeds | " + " | ".join(label for _, label in KEYS) + " |"
    lines = [header, "|---" * (4 + len(KEYS)) + "|"]
    for (name, dataset), steps in data.items():
        for step, figs in sorted(steps.items()):
            seeds = max(len(v) for v in figs.values())
            cells = [name, dataset, str(step), str(seeds), *(cell(figs[k], of=seeds) for k, _ in KEYS)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one y scale: runs side by side are read against each other
    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4.2), squeeze=False, sharey=True)
    for ax, ((name, dataset), steps) in zip(axes[0], data.items(), strict=True):
        for key, label in KEYS:
            pts = [(s, figs[key]) for s, figs in sorted(steps.items()) if figs[key]]
            xs = [s for s, _ in pts]
            means = [statistics.mean(v) for _, v in pts]
            errs = [statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in pts]
            ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=label)
        ax.set_xlabel("training step (0: the initial weights)")
        ax.set_ylabel("mIoU on the probe's test half (mean ± std over seeds)")
        ax.set_title("\n".join(textwrap.wrap(f"{dataset}: {name}", 60)), fontsize=7)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "root",
        metavar="STUDY_DIR",
        type=existing_dir("pass a study's set folder, e.g. RUNS/small900/coco_stuff15"),
        help="holds seedS/NAME runs with diag/stepNNNNN/SET evaluations",
    )
    parser.add_argument("--names", help="comma-separated run names to keep, in that order (default: every run)")
    parser.add_argument("--figure", metavar="PNG", type=Path, help="also draw the curves there")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else None
    data = curves(Path(args.root))
    if not data:
        parser.error(f"{args.root}: no RUN/diag/stepNNNNN/SET/metrics.json under it; run misseg.evaluate probe=all")
    missing = [n for n in names or [] if n not in {name for name, _ in data}]
    if missing:
        parser.error(f"--names: no step evaluations of {', '.join(missing)} under {args.root}; check the run names")
    if names:
        data = kept(data, names)
    print(table(data))
    if args.figure:
        figure(data, args.figure)


if __name__ == "__main__":
    main()
