"""What the scale scripts that read a folder set and checkpoints share (a helper module, not a script)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from misseg.baselines.kmeans import kmeans_fit, kmeans_predict, kmeans_predict_maps
from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.features import local_features
from misseg.diagnostics.shortcut import seeded_batches
from misseg.metrics.matching import confusion_matrix, match_and_score
from misseg.runs.errors import OneLineArgumentParser, existing_dir, existing_file, reported_errors

SET_HINT = "pass a folder set made by experiments/scale/make_data.py"
CKPT_HINT = "pass a checkpoint (RUN/checkpoints/*.ckpt)"


def add_data(ap: OneLineArgumentParser) -> None:
    ap.add_argument("data", metavar="DATA_DIR", type=existing_dir(SET_HINT), help="a folder set (make_data.py)")


def add_checkpoints(
    ap: OneLineArgumentParser, help: str = "checkpoints (one markdown row each)", hint: str = CKPT_HINT, nargs="+"
) -> None:
    ap.add_argument("ckpts", metavar="CKPT", nargs=nargs, type=existing_file(hint), help=help)


def data_and_checkpoints(prog: str, doc: str, **checkpoints: str) -> OneLineArgumentParser:
    """The parser of `PROG DATA_DIR CKPT [CKPT ...]`, described by the first line of the script's docstring."""
    ap = OneLineArgumentParser(prog=prog, description=doc.splitlines()[0])
    add_data(ap)
    add_checkpoints(ap, **checkpoints)
    return ap


def run(prog: str, work: Callable[..., Any], *args: Any) -> None:
    """work(*args) on one thread (the scale study's), a malformed set or checkpoint as misseg's one line, exit 2."""
    torch.set_num_threads(1)
    with reported_errors(f"{prog}: error"):
        work(*args)


def checkpoint_script(
    prog: str, doc: str, keys: tuple[str, ...], score: Callable[[str, Any], dict]
) -> Callable[[list[str] | None], None]:
    """The main() of a script `PROG DATA_DIR CKPT [CKPT ...]` that prints checkpoint_table's rows of score on the
    set's eval view, as `run` runs it (one thread, one-line errors)."""

    def table(root: str, ckpts: list[str]) -> None:
        checkpoint_table(eval_view(root), ckpts, keys, score)

    def main(argv: list[str] | None = None) -> None:
        args = data_and_checkpoints(prog, doc).parse_args(argv)
        run(prog, table, args.data, args.ckpts)

    return main


def eval_view(root: str) -> FolderDataModule:
    """The set's 64 px eval view (centre crops, batches of 16), set up: what every scale script scores on."""
    data = FolderDataModule(root=root, image_size=64, batch_size=16, num_workers=0)
    data.setup()
    return data


def eval_images(data: FolderDataModule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The eval view's images (N, 3, H, W), masks (N, H, W; 255 = ignored) and labels (int64, ignored -> -1)."""
    batches = list(data.val_dataloader())
    x = torch.cat([b["image"] for b in batches])
    masks = torch.cat([b["mask"] for b in batches])
    gt = masks.long().clone()  # .long() of an int64 tensor is the same tensor: keep masks' 255s
    gt[gt == 255] = -1
    return x, masks, gt


def cluster_maps(module: Any, x: torch.Tensor) -> torch.Tensor:
    """(N, H, W) argmax-p' clusters of a module's network on images x (N, 3, H, W), 32 at a time."""
    with torch.no_grad():
        return torch.cat([module.model.predict(xb)[0] for xb in x.split(32)])


def row_bands(K: int, N: int, H: int, W: int) -> torch.Tensor:
    """(N, H, W) labels of K horizontal bands of equal height: the positional partition clusters can follow."""
    return (torch.arange(H) * K // H)[None, :, None].expand(N, H, W)


def column_bands(K: int, N: int, H: int, W: int) -> torch.Tensor:
    """(N, H, W) labels of K vertical bands of equal width."""
    return (torch.arange(W) * K // W)[None, None, :].expand(N, H, W)


def rgb_kmeans(x: torch.Tensor, K: int) -> torch.Tensor:
    """(N, H, W) K-means RGB of images x (N, 3, H, W): K clusters fitted on their pixels (seed 0), then every pixel's
    nearest centre: the colour baseline the scale scripts set beside the clusters."""
    pixels = [xb.permute(0, 2, 3, 1).reshape(-1, 3) for xb in x.split(32)]
    return kmeans_predict(x, kmeans_fit(pixels, K, seed=0))


def body_maps(module: Any, x: torch.Tensor) -> torch.Tensor:
    """(N, C, U, V) the frozen body's map of every image, 32 at a time: the features training's correspondences read
    (kept_body), before any projection."""
    with torch.no_grad():
        return torch.cat([local_features(module, xb, layer="body") for xb in x.split(32)])


def body_kmeans(module: Any, x: torch.Tensor, K: int) -> torch.Tensor:
    """(N, H, W) K-means (10 seedings, the lowest inertia kept) on the frozen body's map that the checkpoint keeps, the
    body the correspondences are read from: the partition those matches agree with most if they follow its features."""
    feats = body_maps(module, x).split(32)
    pixels = [f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats]
    centres = kmeans_fit(pixels, K, seed=0, restarts=10)
    return torch.cat([kmeans_predict_maps(f, centres, size=x.shape[-2:])[0] for f in feats])


def miou(pred: torch.Tensor, target: torch.Tensor, K: int, num_classes: int) -> float:
    """Whole-set Hungarian mIoU of (N, H, W) cluster ids against class ids (255 = ignored): a row's figure, for
    reading beside the label-free ones."""
    return match_and_score(confusion_matrix(pred, target, K, num_classes))["miou"]


def checkpoint_table(
    data: FolderDataModule, ckpts: list[str], keys: tuple[str, ...], score: Callable[[str, Any], dict]
) -> None:
    """A markdown table, one row per checkpoint: score(ckpt, data) -> {key: value} on a set's eval view (eval_view);
    an int (K) or a str prints as it is, a float to three decimals. The header waits for the first row, so a
    checkpoint refused at once (a one-line error) leaves stdout empty."""
    for i, c in enumerate(ckpts):
        r = score(c, data)
        if i == 0:
            print("| checkpoint | " + " | ".join(keys) + " |")
            print("|---" * (len(keys) + 1) + "|")
        print(
            f"| {c} | " + " | ".join(f"{r[k]}" if isinstance(r[k], (int, str)) else f"{r[k]:.3f}" for k in keys) + " |",
            flush=True,
        )


def batch_means(
    module: Any, data: FolderDataModule, keys: tuple[str, ...], per_batch: Callable[[torch.Tensor, torch.Tensor], dict]
) -> dict[str, float]:
    """{key: mean over the set's seeded eval batches of per_batch(L, H)}, L and H from the module's network."""
    rows = []
    for x, _ in seeded_batches(data.val_set):
        with torch.no_grad():
            L, H = module.model(x)
            rows.append(per_batch(L, H))
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}
