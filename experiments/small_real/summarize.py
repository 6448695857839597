"""Markdown table of every metrics.json under a results dir: dataset | method | seed | PA | mIoU | time."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(root: str) -> None:
    rows = []
    for path in sorted(Path(root).glob("*/seed*/*/metrics.json")):
        run = path.parent
        metrics = json.loads(path.read_text())
        info = run / "run_info.json"
        seconds = json.loads(info.read_text()).get("duration_s") if info.exists() else None
        if seconds is None:  # the K-means CLI reports fit + eval time in metrics.json
            seconds = (metrics.get("fit_seconds") or 0) + (metrics.get("eval_seconds") or 0)
        dataset, seed, method = run.parts[-3], run.parts[-2], run.parts[-1]
        pa, miou = metrics["pa"], metrics["miou"]
        rows.append(f"| {dataset} | {method} | {seed[4:]} | {pa:.3f} | {miou:.3f} | {seconds:.0f} |")
    print("| dataset | method | seed | PA | mIoU | time (s) |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logs/small_real")
