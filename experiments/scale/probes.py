"""Tables and a figure of the diagnostics written by diagnose.sh: for every run, step and set, mIoU of the method's
own clusters, K-means on L and a linear probe on L (all on the probe's test half of the images), beside the same
probes on the random-init encoder of the same architecture.

Usage: python experiments/scale/probes.py RUN_ROOT [--figure PNG]   (RUN_ROOT: searched for */diag/*/*/metrics.json)
"""

from __future__ import annotations

import json
from pathlib import Path

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/probes.py"


def rows(root: Path) -> list[dict]:
    out = []
    for path in sorted(root.rglob("diag/*/*/metrics.json")):
        if "_crf" in path.parent.parent.name:  # crf=true scores (reference.sh, crf_rest.sh) carry no probes
            continue
        m = json.loads(path.read_text())
        probe = m.get("probe", {})
        if not probe:  # a clusters-only evaluation (e.g. every image at one step) has no probe row to give
            continue
        step, dataset, run = path.parent.parent.name, path.parent.name, path.parents[3]
        out.append(
            dict(
                run=str(run.relative_to(root)),
                step=step,
                set=dataset,
                clusters=probe.get("unsupervised", {}).get("miou"),
                kmeans=probe.get("kmeans", {}).get("miou"),
                linear=probe.get("linear", {}).get("miou"),
            )
        )
    return out


def table(data: list[dict]) -> str:
    random = {(r["run"], r["set"]): r for r in data if r["step"] == "random"}
    lines = [
        "| run | set | step | clusters | K-means on L | linear probe | linear probe, random init | probe gain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data:
        if r["step"] == "random":
            continue
        ref = random.get((r["run"], r["set"]), {}).get("linear")
        gain = f"{r['linear'] - ref:+.3f}" if ref is not None and r["linear"] is not None else ""
        cells = [r["run"], r["set"], r["step"].removeprefix("step").lstrip("0")]
        cells += [f"{v:.3f}" if v is not None else "" for v in (r["clusters"], r["kmeans"], r["linear"], ref)]
        lines.append("| " + " | ".join([*cells, gain]) + " |")
    return "\n".join(lines)


def figure(data: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in data if r["step"] != "random" and r["linear"] is not None]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for method, marker in (("mi", "o"), ("iic", "s")):
        pts = [r for r in trained if Path(r["run"]).name.startswith(method)]
        ax.scatter([r["clusters"] for r in pts], [r["linear"] for r in pts], marker=marker, label=method)
        for r in pts:
            ax.annotate(f"{r['set']}@{r['step'].removeprefix('step').lstrip('0')}", (r["clusters"], r["linear"]),
                        fontsize=6, alpha=0.7)  # fmt: skip
    lo = min(min(r["clusters"], r["linear"]) for r in trained) - 0.02
    hi = max(max(r["clusters"], r["linear"]) for r in trained) + 0.02
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="probe = clusters")
    ax.set_xlabel("mIoU of the method's own clusters")
    ax.set_ylabel("mIoU of a linear probe on L (same test images)")
    ax.set_title("What the representation holds vs what the clusters use")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "root",
        metavar="RUN_ROOT",
        type=existing_dir("pass the runs folder diagnose.sh wrote into"),
        help="searched for */diag/*/*/metrics.json",
    )
    parser.add_argument("--figure", metavar="PNG", type=Path, help="also draw the probe vs clusters figure there")
    args = parser.parse_args(argv)
    args.root = Path(args.root)
    data = rows(args.root)
    if args.figure and not any(r["step"] != "random" and r["linear"] is not None for r in data):
        parser.error(f"--figure: no trained run's linear probe under {args.root}; run experiments/scale/diagnose.sh")
    print(table(data))
    if args.figure:
        figure(data, args.figure)


if __name__ == "__main__":
    main()
