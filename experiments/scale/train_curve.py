"""Mean of each logged training scalar (train/*_step) per block of steps, from a run's csv/metrics.csv, as a
markdown table: is the objective still improving where mIoU is flat? Usage: python experiments/scale/train_curve.py
RUN_DIR [BLOCK]"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path


def main(run: str, block: int = 500) -> None:
    sums: dict = defaultdict(lambda: defaultdict(list))
    with open(Path(run) / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k.startswith("train/") and k.endswith("_step") and v:
                    sums[int(row["step"]) // block][k.removesuffix("_step")].append(float(v))
    keys = sorted({k for b in sums.values() for k in b})
    print(f"| steps | {' | '.join(keys)} |\n|---|{'---|' * len(keys)}")
    for b in sorted(sums):
        cells = [f"{sum(v) / len(v):.3f}" if (v := sums[b].get(k)) else "-" for k in keys]
        print(f"| {b * block}-{(b + 1) * block - 1} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
