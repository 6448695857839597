"""Mean of each logged training scalar (train/*_step) per block of steps, from a run's csv/metrics.csv.

A markdown table: is the objective still improving where mIoU is flat?

Usage: python experiments/scale/train_curve.py RUN_DIR [BLOCK]   (BLOCK: steps per row, default 500)
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/train_curve.py"


def block_means(run: str | Path, block: int = 500) -> dict[int, dict[str, float]]:
    """Block index b (steps b * block to (b + 1) * block - 1) -> {train/NAME: mean of train/NAME_step there}."""
    sums: dict = defaultdict(lambda: defaultdict(list))
    with open(Path(run) / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k.startswith("train/") and k.endswith("_step") and v:
                    sums[int(row["step"]) // block][k.removesuffix("_step")].append(float(v))
    return {b: {k: sum(v) / len(v) for k, v in means.items()} for b, means in sorted(sums.items())}


def table(run: str, block: int = 500) -> None:
    means = block_means(run, block)
    keys = sorted({k for b in means.values() for k in b})
    print(f"| steps | {' | '.join(keys)} |\n|---|{'---|' * len(keys)}")
    for b, row in means.items():
        cells = [f"{row[k]:.3f}" if k in row else "-" for k in keys]
        print(f"| {b * block}-{(b + 1) * block - 1} | {' | '.join(cells)} |")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument(
        "run",
        metavar="RUN_DIR",
        type=existing_dir("pass a training run's folder (hydra.run.dir)"),
        help="a training run's folder (its csv/metrics.csv is read)",
    )
    ap.add_argument("block", metavar="BLOCK", type=int, nargs="?", default=500, help="steps per row (default 500)")
    args = ap.parse_args(argv)
    metrics = Path(args.run) / "csv" / "metrics.csv"
    if not metrics.is_file():
        ap.error(f"RUN_DIR {args.run}: no such file {metrics}; pass a run trained with the csv logger")
    if args.block < 1:
        ap.error(f"BLOCK {args.block}: must be a positive number of steps")
    table(args.run, args.block)


if __name__ == "__main__":
    main()
