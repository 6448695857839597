"""The p' ablation of misseg/diagnostics/shortcut.py on trained checkpoints, averaged over an eval set's batches.

Usage: python experiments/scale/shortcut.py DATA_DIR CKPT [CKPT ...]   (prints one markdown row per checkpoint)
Batches of 16 centre crops (64 px, the scale study's eval view) in a seeded random order, as many negatives
as in training. Data: a folder set of make_data.py (shorter side 80 px).
"""

from __future__ import annotations

from _cli import batch_means, checkpoint_script  # experiments/scale/_cli.py

from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.shortcut import assignment_ablation
from misseg.lit.build import load_module

PROG = "experiments/scale/shortcut.py"

KEYS = ("bound", "uniform", "other_image", "share_uniform", "H_between_k", "confidence", "usage_entropy")


def ablate(ckpt: str, data: FolderDataModule) -> dict[str, float]:
    module = load_module(ckpt).eval()
    return batch_means(module, data, KEYS, lambda L, H: assignment_ablation(L, H, module.model.tau))


main = checkpoint_script(PROG, __doc__, KEYS, ablate)


if __name__ == "__main__":
    main()
