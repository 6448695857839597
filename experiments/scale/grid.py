"""A picture of what the clusters follow: the first 8 centre crops of a set, their classes, and per checkpoint
its cluster map (argmax p') and p'_0 (grey, white = 1).

Usage: python experiments/scale/grid.py DATA_DIR OUT.png CKPT [CKPT ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _cli import add_checkpoints, add_data, run  # experiments/scale/_cli.py: DATA_DIR, CKPT... and the one-line errors
from PIL import Image

from misseg.data.datamodule import FolderDataModule
from misseg.lit.build import load_module
from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/grid.py"


def strip(x: torch.Tensor) -> np.ndarray:
    """(N, H, W[, 3]) -> one row of N tiles."""
    return torch.cat(list(x), 1).numpy()


def grid(root: str, out: str, ckpts: list[str]) -> None:
    """Write the picture to `out` and print its path."""
    data = FolderDataModule(root=root, image_size=64, batch_size=8, num_workers=0)
    data.setup()
    batch = next(iter(data.val_dataloader()))
    x, mask = batch["image"], batch["mask"].long()
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    palette = np.random.RandomState(0).rand(256, 3)
    palette[255] = 0  # ignored pixels black
    rows = [strip(((x - lo) / (hi - lo)).permute(0, 2, 3, 1)), palette[strip(mask)]]
    for c in ckpts:
        module = load_module(c).eval()
        clusters, _, p = module.model.predict(x)
        rows += [palette[strip(clusters)], np.repeat(strip(p[:, 0])[..., None], 3, 2)]
    image = (np.concatenate(rows, 0) * 255).astype(np.uint8)
    Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.NEAREST).save(out)
    print(out)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_data(ap)
    ap.add_argument("out", metavar="OUT.png", help="the picture to write")
    add_checkpoints(ap, help="checkpoints (two rows each)")
    args = ap.parse_args(argv)
    if not Path(args.out).parent.is_dir():
        ap.error(f"OUT.png {args.out}: no such directory {Path(args.out).parent}; create it first")
    run(PROG, grid, args.data, args.out, args.ckpts)


if __name__ == "__main__":
    main()
