"""A lever against its base run, seed by seed: the clusters' mIoU of RUNS/small/SET/seedS/{BASE,LEVER}/metrics.json
(the final weights, all images), their per-seed difference, and mean ± std over the seeds found in both.

Usage: python experiments/scale/paired.py RUNS_DIR SET BASE LEVER [--seeds 0,1,2]
"""

from __future__ import annotations

import statistics
from pathlib import Path

from levers_table import cell, miou  # experiments/scale/levers_table.py: a run's mIoU, mean ± std of a column

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/paired.py"


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("runs", metavar="RUNS_DIR", type=existing_dir("the RUNS folder of the scale scripts"))
    ap.add_argument("set", metavar="SET", help="set name (RUNS_DIR/small/SET)")
    ap.add_argument("base", metavar="BASE", help="the base run's name, e.g. mi")
    ap.add_argument("lever", metavar="LEVER", help="the lever run's name, e.g. mi_proto")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    args = ap.parse_args(argv)
    root = Path(args.runs) / "small" / args.set
    pairs = []
    for s in args.seeds.split(","):
        b, lv = (
            miou(root / f"seed{s}" / args.base / "metrics.json"),
            miou(root / f"seed{s}" / args.lever / "metrics.json"),
        )
        if b is not None and lv is not None:
            pairs.append((s, b, lv))
    print(f"| set | seeds | {args.base} | {args.lever} | {args.lever} - {args.base} per seed | mean difference |")
    print("|---|---|---|---|---|---|")
    diffs = [lv - b for _, b, lv in pairs]
    print(
        f"| {args.set} | {','.join(s for s, _, _ in pairs) or '-'} | {cell([b for _, b, _ in pairs])} "
        f"| {cell([lv for _, _, lv in pairs])} | {', '.join(f'{d:+.3f}' for d in diffs) or '-'} "
        f"| {f'{statistics.mean(diffs):+.3f}' if diffs else '-'} ({sum(d > 0 for d in diffs)} of {len(diffs)} up) |"
    )


if __name__ == "__main__":
    main()
