"""The p' ablation of misseg/diagnostics/shortcut.py on trained checkpoints, averaged over an eval set's batches.

Usage: python experiments/scale/shortcut.py DATA_DIR CKPT [CKPT ...]   (prints one markdown row per checkpoint)
Batches of 16 centre crops (64 px, the scale study's eval view) in a seeded random order, as many negatives
as in training. Data: a folder set of make_data.py (shorter side 80 px).
"""

from __future__ import annotations

import torch
from _cli import (  # experiments/scale/_cli.py: DATA_DIR CKPT... and the one-line errors
    checkpoint_table,
    data_and_checkpoints,
    run,
)

from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.shortcut import assignment_ablation, seeded_batches
from misseg.lit.build import load_module

PROG = "experiments/scale/shortcut.py"

KEYS = ("bound", "uniform", "other_image", "share_uniform", "H_between_k", "confidence", "usage_entropy")


def ablate(ckpt: str, data: FolderDataModule) -> dict[str, float]:
    module = load_module(ckpt).eval()
    net, rows = module.model, []
    for x, _ in seeded_batches(data.val_set):
        with torch.no_grad():
            L, H = net(x)
        rows.append(assignment_ablation(L, H, net.tau))
    return {k: sum(r[k] for r in rows) / len(rows) for k in KEYS}


def table(root: str, ckpts: list[str]) -> None:
    """The header, then one markdown row per checkpoint."""
    checkpoint_table(root, ckpts, KEYS, ablate)


def main(argv: list[str] | None = None) -> None:
    args = data_and_checkpoints(PROG, __doc__).parse_args(argv)
    run(PROG, table, args.data, args.ckpts)


if __name__ == "__main__":
    main()
