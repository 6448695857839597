"""The table of gpu_thesis.sh: per eval set, mIoU of the trivial map, K-means RGB, and each trained run
(unsupervised clusters, linear probe, K-means on L), MI's random-init probe; then steps trained and the oracle test.

Usage: python experiments/scale/gpu_summary.py OUT SET [SET ...]
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/gpu_summary.py"
RUNS = ("mi", "mi_corr", "iic")


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


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument(
        "out",
        metavar="OUT",
        type=existing_dir("pass the OUT folder of experiments/scale/gpu_thesis.sh"),
        help="gpu_thesis.sh's output folder",
    )
    ap.add_argument("sets", metavar="SET", nargs="+", help="eval set names (gpu_thesis.sh's EVAL_SETS), one row each")
    args = ap.parse_args(argv)
    out, sets = Path(args.out), args.sets
    runs = " | ".join(f"{r}: clusters / probe / K-means on L" for r in RUNS)
    print(f"| eval set | trivial | K-means RGB | {runs} | MI random init: probe |")
    print("|---" * (len(RUNS) + 4) + "|")
    for s in sets:
        cells = [miou(read(out / "baselines" / s / b / "metrics.json")) for b in ("trivial", "kmeans")]
        for r in RUNS:
            m = read(out / r / "eval" / s / "metrics.json")
            cells.append(f"{miou(m, 'unsupervised')} / {miou(m, 'linear')} / {miou(m, 'kmeans')}")
        cells.append(miou(read(out / "mi" / "eval" / f"{s}_random" / "metrics.json"), "linear"))
        print(f"| {s} | " + " | ".join(cells) + " |")
    print()
    for r in RUNS:
        m = read(out / r / "metrics.json")
        print(f"- {r}: {steps(out / r)}; mIoU on the training set (all images, last weights): {miou(m)}")
    o = read(out / "oracle.json")
    if o:
        learned, oracle = o["learned"], o["oracle"]
        print(
            f"- oracle test ({o['setting']} setting, {learned['steps']} / {oracle['steps']} steps): bound with the "
            f"learned p' {learned['eval_bound']:.3f}, with p' = the classes {oracle['eval_bound']:.3f}"
        )


if __name__ == "__main__":
    main()
