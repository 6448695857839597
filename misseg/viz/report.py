"""Evaluation report: the PNG figures of a run, written next to metrics.json and logged to W&B when on.

Called at the end of `misseg.train`, by `misseg.evaluate` and by the K-means baseline, with the metric
result (its whole-set confusion matrix and cluster -> class mapping), so the figures show exactly the
matching that produced the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from misseg.data.transforms import denormalize
from misseg.viz.figures import (
    relabel,
    save_class_histogram,
    save_confusion_matrix,
    save_iou_bars,
    save_qualitative_grid,
)

PredictFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
FIGURES = ("qualitative", "confusion", "iou", "class_histogram")


def matching_label(matching: str) -> str:
    return {"hungarian": "Hungarian (one-to-one)", "majority": "majority vote (many-to-one)"}.get(matching, matching)


def collect_examples(predict: PredictFn, loader: Iterable, num_examples: int) -> dict[str, np.ndarray]:
    """The first `num_examples` images of `loader`: images in [0, 1] (N, H, W, 3), masks, clusters, confidence."""
    parts: dict[str, list] = {"images": [], "masks": [], "clusters": [], "confidence": []}
    n = 0
    for batch in loader:
        x = batch["image"][: num_examples - n]
        clusters, confidence = predict(x)
        parts["images"].append(denormalize(x).permute(0, 2, 3, 1).cpu().numpy())
        parts["masks"].append(batch["mask"][: len(x)].cpu().numpy())
        parts["clusters"].append(clusters.cpu().numpy())
        parts["confidence"].append(confidence.float().cpu().numpy())
        n += len(x)
        if n >= num_examples:
            break
    if n == 0:
        raise ValueError("report: the evaluation loader yielded no images")
    return {k: np.concatenate(v) for k, v in parts.items()}


def mask_class_counts(loader: Iterable, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Labelled pixels per class over a loader's masks (the class-frequency histogram without a model)."""
    counts = torch.zeros(num_classes, dtype=torch.long)
    for batch in loader:
        m = batch["mask"].reshape(-1)
        counts += torch.bincount(m[m != ignore_index].long(), minlength=num_classes)[:num_classes]
    return counts.numpy()


def write_report(
    run_dir: str | Path,
    predict: PredictFn,
    datamodule,
    result: dict,
    loggers: Sequence = (),
    num_examples: int = 6,
    title: str = "",
    out_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Write {qualitative,confusion,iou,class_histogram}.png into out_dir (default run_dir/figures; the callers
    pass runs.results.figures_dir of their metrics file); log them to any WandbLogger.

    predict: images (B, 3, H, W) -> (cluster map (B, H, W), confidence (B, H, W)), e.g. a module's
    `predict_maps`. result: the metric's output (confusion, mapping, per_class_iou, pa, miou, matching).
    The class histogram is the confusion matrix's column sums = labelled pixels of the evaluation set.
    """
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "figures"
    names = list(datamodule.classes)
    from misseg.data.datamodule import with_val_set

    with_val_set(datamodule)
    confusion = np.asarray(result["confusion"], np.int64)
    mapping = result["mapping"]
    matching = matching_label(result.get("matching", "hungarian"))
    scores = f"PA {result['pa']:.3f}, mIoU {result['miou']:.3f}"
    head = f"{title} - " if title else ""
    ex = collect_examples(predict, datamodule.val_dataloader(), num_examples)
    paths = {
        "qualitative": save_qualitative_grid(
            out_dir / "qualitative.png",
            ex["images"],
            ex["masks"],
            relabel(ex["clusters"], mapping),
            ex["confidence"],
            names,
            f"{head}{scores}; clusters matched by {matching}",
        ),
        "confusion": save_confusion_matrix(
            out_dir / "confusion.png", confusion, mapping, names, f"{head}confusion after {matching} matching"
        ),
        "iou": save_iou_bars(out_dir / "iou.png", result["per_class_iou"], names, f"{head}per-class IoU ({matching})"),
        "class_histogram": save_class_histogram(
            out_dir / "class_histogram.png",
            confusion.sum(0),
            names,
            f"class frequencies of the evaluation set ({result.get('num_images', '?')} images)",
        ),
    }
    log_figures(paths, loggers)
    return paths


def log_figures(paths: dict[str, Path], loggers: Sequence) -> None:
    """Each PNG as an image under figures/NAME in every WandbLogger (other loggers have no image API)."""
    try:
        from pytorch_lightning.loggers import WandbLogger
    except ImportError:  # pragma: no cover - lightning is a dependency
        return
    for logger in loggers or ():
        if isinstance(logger, WandbLogger):
            for name, path in paths.items():
                logger.log_image(key=f"figures/{name}", images=[str(path)])
