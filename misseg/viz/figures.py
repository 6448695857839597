"""Evaluation figures as pure functions: arrays in, one PNG out (matplotlib, Agg backend, no global state).

Class colours are fixed per class index (`class_colors`), so ground truth and matched predictions agree
across figures and runs. Ignored pixels (label 255) are black; clusters the matching left unassigned grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

IGNORE = 255
UNMATCHED = -1
UNMATCHED_COLOR = np.array([128, 128, 128], np.uint8)


def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8: tab10 / tab20 when they suffice, else evenly spaced hues."""
    if num_classes <= 10:
        rgb = plt.get_cmap("tab10").colors[:num_classes]
    elif num_classes <= 20:
        rgb = plt.get_cmap("tab20").colors[:num_classes]
    else:
        rgb = plt.get_cmap("hsv")(np.linspace(0, 1, num_classes, endpoint=False))[:, :3]
    return (np.asarray(rgb) * 255).round().astype(np.uint8)


def colorize(labels: np.ndarray, colors: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """(H, W) class ids (IGNORE = 255 -> black, UNMATCHED = -1 -> grey) -> (H, W, 3) uint8."""
    labels = np.asarray(labels).astype(np.int64)
    palette = np.concatenate([colors, UNMATCHED_COLOR[None], np.zeros((1, 3), np.uint8)])  # [..., grey, black]
    idx = np.where(labels == UNMATCHED, len(colors), labels)
    idx = np.where((labels >= len(colors)) | (labels < UNMATCHED), len(colors) + 1, idx)  # 255 and out of range
    if ignore is not None:
        idx = np.where(ignore, len(colors) + 1, idx)
    return palette[idx]


def relabel(clusters: np.ndarray, mapping: Sequence[int]) -> np.ndarray:
    """Cluster ids -> matched class ids (UNMATCHED where the mapping gives -1)."""
    return np.asarray(mapping, np.int64)[np.asarray(clusters, np.int64)]


def matched_confusion(confusion: np.ndarray, mapping: Sequence[int]) -> np.ndarray:
    """(K_pred, C) cluster x class counts -> (C, C + 1) true class x matched class, last column = unmatched."""
    confusion = np.asarray(confusion, np.int64)
    C = confusion.shape[1]
    onehot = np.zeros((confusion.shape[0], C + 1), np.int64)
    mapping = np.asarray(mapping, np.int64)
    onehot[np.arange(len(mapping)), np.where(mapping < 0, C, mapping)] = 1
    return confusion.T @ onehot


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _legend(fig: plt.Figure, class_names: Sequence[str], colors: np.ndarray, extra: bool = True) -> None:
    handles = [Patch(color=c / 255, label=n) for n, c in zip(class_names, colors, strict=False)]
    if extra:
        handles += [
            Patch(color=UNMATCHED_COLOR / 255, label="unmatched cluster"),
            Patch(facecolor="black", edgecolor="0.5", label="ignored (255)"),
        ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def save_qualitative_grid(
    path: str | Path,
    images: np.ndarray,
    masks: np.ndarray,
    predictions: np.ndarray,
    confidence: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
) -> Path:
    """One row per image: image | ground truth | prediction after matching | confidence (thesis fig. 5.3/5.4).

    images (N, H, W, 3) in [0, 1]; masks (N, H, W) with 255 = ignore; predictions (N, H, W) matched
    class ids (-1 = unmatched cluster); confidence (N, H, W) in [0, 1]. Ignored pixels are black in the
    ground truth and the prediction (they are not scored).
    """
    N = len(images)
    if not (len(masks) == len(predictions) == len(confidence) == N) or N == 0:
        raise ValueError(
            f"qualitative grid: got {len(images)} images, {len(masks)} masks, "
            f"{len(predictions)} predictions, {len(confidence)} confidence maps (need equal, > 0)"
        )
    colors = class_colors(len(class_names))
    h, w = masks.shape[1:]
    cell = 2.4
    fig_h = N * cell * h / w + 1.0  # + room for the title and the legend
    fig, axes = plt.subplots(N, 4, figsize=(4 * cell + 0.8, fig_h), squeeze=False)  # + the colour bar
    cols = ("image", "ground truth", "prediction (matched)", "confidence")
    for i in range(N):
        ignore = masks[i] == IGNORE
        panels = (np.clip(images[i], 0, 1), colorize(masks[i], colors), colorize(predictions[i], colors, ignore))
        for j, panel in enumerate(panels):
            axes[i, j].imshow(panel, interpolation="nearest")
        im = axes[i, 3].imshow(confidence[i], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        for j in range(4):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(cols[j], fontsize=9)
    fig.colorbar(im, ax=axes[:, 3].tolist(), fraction=0.05, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.1 / fig_h, va="top")
    _legend(fig, class_names, colors)
    fig.subplots_adjust(top=1 - 0.45 / fig_h, bottom=0.5 / fig_h, wspace=0.03, hspace=0.05)
    return _save(fig, path)


def save_confusion_matrix(
    path: str | Path, confusion: np.ndarray, mapping: Sequence[int], class_names: Sequence[str], title: str = ""
) -> Path:
    """Matched confusion matrix, rows = true class normalised to 1, columns = class after matching."""
    m = matched_confusion(confusion, mapping).astype(np.float64)
    if not (np.asarray(mapping) < 0).any():
        m = m[:, :-1]
    names = list(class_names) + (["unmatched"] if m.shape[1] > len(class_names) else [])
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    C = len(class_names)
    size = max(4.0, 0.45 * C + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(C), class_names, fontsize=8)
    ax.set_xlabel("predicted class (after matching)")
    ax.set_ylabel("true class")
    if C <= 20:
        for (r, c), v in np.ndenumerate(norm):
            if v >= 0.005:
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class's pixels")
    ax.set_title(title or "matched confusion matrix", fontsize=10)
    return _save(fig, path)


def save_iou_bars(
    path: str | Path, per_class_iou: Sequence[float], class_names: Sequence[str], title: str = ""
) -> Path:
    """Per-class IoU bars (NaN = class absent and never predicted, drawn as an empty slot) with the mIoU line."""
    iou = np.asarray(per_class_iou, np.float64)
    colors = class_colors(len(class_names)) / 255
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(iou) + 2), 3.5))
    ax.bar(range(len(iou)), np.nan_to_num(iou), color=colors, edgecolor="black", linewidth=0.5)
    if np.isfinite(iou).any():
        miou = float(np.nanmean(iou))
        ax.axhline(miou, color="red", linestyle="--", linewidth=1, label=f"mIoU {miou:.3f}")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xticks(range(len(iou)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(title or "per-class IoU", fontsize=10)
    return _save(fig, path)


def save_class_histogram(path: str | Path, counts: Sequence[int], class_names: Sequence[str], title: str = "") -> Path:
    """Pixel share of each class in a dataset (thesis fig. 5.1); counts exclude ignored pixels."""
    counts = np.asarray(counts, np.float64)
    share = counts / max(counts.sum(), 1)
    colors = class_colors(len(class_names)) / 255
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(counts) + 2), 3.5))
    bars = ax.bar(range(len(counts)), share, color=colors, edgecolor="black", linewidth=0.5)
    for b, s in zip(bars, share, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, s, f"{100 * s:.1f}%", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(counts)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, min(1.0, share.max() * 1.15 + 0.02))
    ax.set_ylabel("share of labelled pixels")
    ax.set_title(title or "class frequencies", fontsize=10)
    return _save(fig, path)
