"""Per class: how a run's clusters cut it (section 54). From each run's metrics.json (the whole set's confusion
and the matched per-class IoU), seeds pooled by their mean:

- the class's IoU after Hungarian matching;
- its top share: the fraction of the class's pixels in the one cluster that holds most of them (1 = kept whole,
  1/K = spread evenly over the K clusters);
- per run, the clusters' balance (their size entropy over log K) and the largest cluster's share of the pixels.

A class that is large in the set but split over several equal clusters has a low top share and a low IoU: that is
what a prior pushing the clusters towards equal sizes does to a set whose classes are not.

Usage: python experiments/scale/class_split.py RUNS_DIR SET --names RUN[,RUN...] [--study small] [--seeds 0,1,2]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from levers_table import add_runs  # this folder is on sys.path

from misseg.diagnostics.shortcut import histogram_entropy
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/class_split.py"


def class_split(confusion: np.ndarray) -> dict[str, np.ndarray | float]:
    """confusion[c, k] = pixels of cluster c whose class is k. Returns each class's top share and pixel share,
    the clusters' balance (entropy / log K) and the largest cluster's share of all pixels."""
    confusion = np.asarray(confusion, dtype=float)
    per_class = confusion.sum(0)
    top_share = confusion.max(0) / np.maximum(per_class, 1)
    sizes = confusion.sum(1) / confusion.sum()
    return {"top_share": top_share, "class_share": per_class / per_class.sum(), "balance": balance(sizes),
            "largest": float(sizes.max())}  # fmt: skip


def balance(sizes: np.ndarray) -> float:
    """Entropy of the sizes over log of their number: 1 = all equal (agreement.py's balance, from a histogram)."""
    return histogram_entropy(torch.from_numpy(np.asarray(sizes, dtype=float)), len(sizes))


def read_run(run: Path) -> tuple[dict, list[float], list[str]] | None:
    path = run / "metrics.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    return class_split(np.array(m["confusion"])), m["per_class_iou"], m["class_names"]


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_runs(ap)
    ap.add_argument("set", metavar="SET", help="set name (RUNS_DIR/STUDY/SET)")
    ap.add_argument("--names", required=True, help="comma-separated run names")
    ap.add_argument("--study", default="small", help="RUNS_DIR's subfolder (small, small1500)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds to pool")
    args = ap.parse_args(argv)
    root = Path(args.runs) / args.study / args.set
    if not root.is_dir():
        ap.error(f"{args.set}: no such directory {root}; pass a set the runs were trained on")
    rows, classes, skipped = [], None, []
    for name in args.names.split(","):
        found = [r for s in args.seeds.split(",") if (r := read_run(root / f"seed{s}" / name)) is not None]
        if not found:
            skipped.append(name)
            continue
        classes = found[0][2]
        splits = [f[0] for f in found]
        rows.append((name, len(found), np.mean([f[1] for f in found], 0), np.mean([s["top_share"] for s in splits], 0),
                     np.mean([s["balance"] for s in splits]), np.mean([s["largest"] for s in splits]),
                     splits[0]["class_share"]))  # fmt: skip
    if not rows:
        ap.error(f"--names {args.names}: no run has a metrics.json under {root}/seed*/")
    for name in skipped:  # a run still training, or a name mistyped: said, not silently left out
        print(f"skip: {name} (no metrics.json under {root}/seed*/)", file=sys.stderr)
    share = rows[0][6]
    print(f"| run | seeds | balance (classes {balance(share):.3f}) | largest cluster "
          + "".join(f"| {c} ({p:.2f}) " for c, p in zip(classes, share, strict=True)) + "|")  # fmt: skip
    print("|---" * (4 + len(classes)) + "|")
    for name, n, iou, top, balanced, largest, _ in rows:
        cells = "".join(f"| {i:.2f} / {t:.2f} " for i, t in zip(iou, top, strict=True))
        print(f"| {name} | {n} | {balanced:.3f} | {largest:.3f} {cells}|")
    print("\n(Header: each class's share of the labelled pixels. Cells: IoU after matching / top share, the fraction "
          "of the class's pixels in its largest cluster; means over the seeds.)")  # fmt: skip


if __name__ == "__main__":
    main()
