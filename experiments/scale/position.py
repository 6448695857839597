"""How much does position alone say about the classes? Per set, on the 64 px centre crops of every image:

- NMI(classes, cell): NMI between the class map and the position cell (an 8 x 8 grid of 8 px cells);
- position baseline: the same map for every image, K-means on the pixel coordinates (K = number of classes),
  Hungarian-matched on the whole set like every method (label-free: it never sees a mask or a pixel value);
- rings baseline: the same, with K rings of equal area around the crop's centre (a centre/border map: what a
  method can score on a set whose objects sit in the middle of the photo, with flips of every kind unable to
  tell it apart from content).

Usage: python experiments/scale/position.py DATA_DIR [DATA_DIR ...]   (one markdown row per set)
"""

from __future__ import annotations

from pathlib import Path

import torch

from misseg.baselines.kmeans import kmeans_fit
from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.shortcut import normalized_mutual_information
from misseg.metrics.matching import confusion_matrix, match_and_score
from misseg.runs.errors import OneLineArgumentParser, existing_dir, reported_errors

PROG = "experiments/scale/position.py"


def centre_rings(H: int, W: int, K: int) -> torch.Tensor:
    """(1, H, W) long: K rings of (near) equal area by distance from the centre, 0 = innermost."""
    y = torch.arange(H, dtype=torch.float64)[:, None] - (H - 1) / 2
    x = torch.arange(W, dtype=torch.float64)[None, :] - (W - 1) / 2
    r = (y**2 + x**2).sqrt()
    edges = torch.quantile(r.flatten(), torch.arange(1, K, dtype=torch.float64) / K)
    return torch.bucketize(r, edges, right=True)[None]


def table(roots: list[str]) -> None:
    """The header, then one markdown row per set; the header only once the first set has loaded, so that a
    malformed set gives the error line alone."""
    for i, root in enumerate(roots):
        data = FolderDataModule(root=root, image_size=64, batch_size=64, num_workers=0)
        data.setup()
        gt = torch.cat([b["mask"] for b in data.val_dataloader()]).long()
        N, H, W = gt.shape
        K = data.num_classes
        rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        cell = (rows // 8 * 8 + cols // 8)[None].expand(N, H, W)
        labelled = gt.clone()
        labelled[labelled == 255] = -1
        coords = torch.stack([rows, cols], -1).reshape(-1, 2).float()
        centres = kmeans_fit([coords], K, iters=50, seed=0)
        region = torch.cdist(coords, centres).argmin(1).reshape(H, W)[None].expand(N, H, W)
        scores = match_and_score(confusion_matrix(region, gt, K, K))
        rings = match_and_score(confusion_matrix(centre_rings(H, W, K).expand(N, H, W), gt, K, K))
        nmi = normalized_mutual_information(labelled, cell)
        if i == 0:
            print("| set | classes | NMI(classes, 8x8 cell) | position baseline mIoU (PA) | rings baseline mIoU (PA) |")
            print("|---|---|---|---|---|")
        print(
            f"| {Path(root).name} | {K} | {nmi:.3f} | {scores['miou']:.3f} ({scores['pa']:.3f}) "
            f"| {rings['miou']:.3f} ({rings['pa']:.3f}) |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument(
        "data",
        metavar="DATA_DIR",
        nargs="+",
        type=existing_dir("pass folder sets made by experiments/scale/make_data.py"),
        help="folder sets (make_data.py), one markdown row each",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with reported_errors(f"{PROG}: error"):  # a malformed set: misseg's one line, exit 2
        table(args.data)


if __name__ == "__main__":
    main()
