"""A picture of what the clusters follow: the first 8 centre crops of a set, their classes, and per checkpoint
its cluster map (argmax p') and p'_0 (grey, white = 1).

Usage: python experiments/scale/grid.py DATA_DIR OUT.png CKPT [CKPT ...]
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from PIL import Image

from misseg.data.datamodule import FolderDataModule
from misseg.lit.build import load_module


def strip(x: torch.Tensor) -> np.ndarray:
    """(N, H, W[, 3]) -> one row of N tiles."""
    return torch.cat(list(x), 1).numpy()


def main() -> None:
    torch.set_num_threads(1)
    root, out, ckpts = sys.argv[1], sys.argv[2], sys.argv[3:]
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


if __name__ == "__main__":
    main()
