"""Segment new images with a trained segmenter: pure functions, no Hydra, no Lightning.

Pipeline per image: load (EXIF-rotated, any mode -> RGB) -> views (resize/tile policy) -> p' at feature
resolution -> bilinear upsampling to the ORIGINAL resolution -> argmax (class map) and max (confidence).

Resize/tile policies (`policy`):
- "resize" (default): shorter side -> `size` (both sides rounded to a multiple of the model stride d), one
  pass over the whole image. The high-level features H_k summarize the whole image, as in evaluation.
- "sliding": the same resize, then `size` x `size` windows with `overlap`; p' of overlapping windows is
  averaged. Each window is what training saw (random crops of `size` after the same resize), so very wide
  or tall images (panoramas) keep training-like statistics; H_k is then per window.
- "none": the original resolution in one pass (memory grows with the image; small images or big GPUs).
In all three, p' is upsampled straight to the original image size, so every output has the input's size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

from misseg.data.images import IMAGE_SUFFIXES, non_image_entries, rgb_array
from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.runs.errors import UserError

POLICIES = ("resize", "sliding", "none")
UNMATCHED = 255  # class-map value of clusters that the mapping leaves unmatched (-1), as the datasets' ignore


class InputError(UserError, ValueError):
    """Bad input path, image, mapping or option; the message names it and what to do."""


# ---------------------------------------------------------------- inputs


def list_images(path: str | Path) -> list[Path]:
    """A file -> [file]; a folder -> its image files (not recursive), sorted by name."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"input={str(path)!r}: no such file or folder")
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"input={str(path)!r}: the folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return images


def ignored_files(path: str | Path) -> list[Path]:
    """What list_images leaves out of a folder input (notes.txt, .DS_Store, subfolders); [] for a file."""
    path = Path(path).expanduser()
    return non_image_entries(path) if path.is_dir() else []


def load_image(path: str | Path) -> torch.Tensor:
    """Any mode, EXIF orientation applied -> (3, H, W) uint8 RGB (misseg.data.images.rgb_array, as in
    training). The returned size is the upright image's: the class map has this size."""
    try:
        arr = rgb_array(path)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{path}: cannot be read as an image ({e}); remove it from the input folder") from e
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def resized_shape(height: int, width: int, size: int, multiple: int) -> tuple[int, int]:
    """Shorter side -> size, aspect kept, both sides rounded to a multiple of the model stride (>= 1 stride)."""
    scale = size / min(height, width)
    return tuple(max(multiple, int(round(n * scale / multiple)) * multiple) for n in (height, width))


def normalize(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> float, ImageNet mean/std: the evaluation transform of misseg.data."""
    x = image.float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering [0, length): every `stride`, the last one flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def make_views(
    image: torch.Tensor, policy: str, size: int | None, multiple: int, overlap: float = 0.5
) -> tuple[torch.Tensor, list[tuple[int, int]], tuple[int, int]]:
    """uint8 (3, H, W) -> the model inputs: crops (N, 3, h, w), their pixel offsets, the canvas size (h, w).

    Offsets are multiples of `multiple` (the stride d), so window features fall on the canvas's feature grid.
    """
    if policy not in POLICIES:
        raise InputError(f"policy={policy!r}: use one of {POLICIES} (see misseg/deploy/inference.py)")
    if policy == "none":
        return normalize(image)[None], [(0, 0)], tuple(image.shape[1:])
    if not size or size < multiple:
        raise InputError(f"size={size}: needs a shorter side of at least the model stride {multiple} px")
    h, w = resized_shape(image.shape[1], image.shape[2], size, multiple)
    x = normalize(TF.resize(image, [h, w], antialias=True))
    if policy == "resize":
        return x[None], [(0, 0)], (h, w)
    if not 0 <= overlap < 1:
        raise InputError(f"overlap={overlap}: use a fraction in [0, 1)")
    win = max(multiple, size // multiple * multiple)
    stride = max(multiple, int(round(win * (1 - overlap) / multiple)) * multiple)
    offsets = [(y, x0) for y in window_starts(h, win, stride) for x0 in window_starts(w, win, stride)]
    crops = torch.stack([x[:, y : y + win, x0 : x0 + win] for y, x0 in offsets])
    return crops, offsets, (h, w)


# ---------------------------------------------------------------- model


@torch.no_grad()
def feature_probs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """p' (eq. 4.8) over the K classes at feature resolution for a batch (B, 3, h, w) -> (B, K, U, V).
    model: MISegmenter."""
    return model.probs(*model(x))


def assemble(probs: torch.Tensor, offsets: Sequence[tuple[int, int]], canvas: tuple[int, int], d: int) -> torch.Tensor:
    """Average per-view p' (N, K, u, v) onto the canvas's feature grid -> (K, ceil(h/d), ceil(w/d))."""
    if len(offsets) == 1:
        return probs[0]
    K, u, v = probs.shape[1:]
    total = probs.new_zeros(K, math.ceil(canvas[0] / d), math.ceil(canvas[1] / d))
    count = probs.new_zeros(1, *total.shape[1:])
    for p, (y, x) in zip(probs, offsets, strict=True):  # a handful of windows per image, not pixels
        total[:, y // d : y // d + u, x // d : x // d + v] += p
        count[:, y // d : y // d + u, x // d : x // d + v] += 1
    return total / count


def predict_probs(
    model: torch.nn.Module,
    images: Sequence[torch.Tensor],
    policy: str = "resize",
    size: int | None = 128,
    overlap: float = 0.5,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """uint8 images (3, H_i, W_i) -> p' per image at feature resolution (K, U_i, V_i), on `device`.

    Views of the same shape (windows; images of the same size) run together in batches of `batch_size`.
    BatchNorm is in eval mode, so batching does not change any result.
    """
    d = int(model.d)
    views = [make_views(im, policy, size, d, overlap) for im in images]
    flat = [(i, j) for i, (crops, _, _) in enumerate(views) for j in range(len(crops))]
    by_shape: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, j in flat:
        by_shape.setdefault(tuple(views[i][0].shape[-2:]), []).append((i, j))
    out: list[list] = [[None] * len(crops) for crops, _, _ in views]
    for keys in by_shape.values():
        for start in range(0, len(keys), batch_size):
            chunk = keys[start : start + batch_size]
            x = torch.stack([views[i][0][j] for i, j in chunk]).to(device)
            for (i, j), p in zip(chunk, feature_probs(model, x), strict=True):
                out[i][j] = p
    return [assemble(torch.stack(ps), offsets, canvas, d) for ps, (_, offsets, canvas) in zip(out, views, strict=True)]


def linear_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices i0, i1 and weight of i1 for 1-D linear resampling n_in -> n_out, align_corners=False
    (the sampling grid of F.interpolate(mode="bilinear", size=...))."""
    src = ((torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp_min(0)
    i0 = src.floor().long().clamp_max(n_in - 1)
    i1 = (i0 + 1).clamp_max(n_in - 1)
    return i0, i1, (src - i0).float()


def upsample_argmax(p: torch.Tensor, size: tuple[int, int], max_elements: int = 1 << 24) -> tuple[torch.Tensor, ...]:
    """p' (K, U, V) -> class map (H, W) long and confidence (H, W) float of its bilinear upsampling to `size`.

    Equals F.interpolate(p[None], size, mode="bilinear").max(1) but never holds the full (K, H, W) tensor:
    rows are done in chunks of at most `max_elements` values, so a 12-MP photo with many clusters fits.
    """
    K, _, V = p.shape
    H, W = size
    c0, c1, cw = linear_taps(V, W, p.device)
    cols = p[:, :, c0] * (1 - cw) + p[:, :, c1] * cw  # (K, U, W): columns first, small
    r0, r1, rw = linear_taps(p.shape[1], H, p.device)
    rows = max(1, max_elements // max(1, K * W))
    classes = torch.empty(H, W, dtype=torch.long, device=p.device)
    confidence = torch.empty(H, W, dtype=p.dtype, device=p.device)
    for s in range(0, H, rows):  # a few row chunks of a big image, each vectorized
        w = rw[s : s + rows, None]
        chunk = cols[:, r0[s : s + rows]] * (1 - w) + cols[:, r1[s : s + rows]] * w
        confidence[s : s + rows], classes[s : s + rows] = chunk.max(0)
    return classes, confidence


# ---------------------------------------------------------------- labels and pictures


def load_mapping(path: str | Path, K: int) -> tuple[np.ndarray, list[str]]:
    """metrics.json of misseg.train/evaluate -> cluster -> class (-1 unmatched) array (K,), class names."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InputError(f"mapping={str(path)!r}: not found; pass the metrics.json of an evaluation run") from e
    except json.JSONDecodeError as e:
        raise InputError(f"mapping={str(path)!r}: not valid JSON ({e})") from e
    if not isinstance(data, dict) or "mapping" not in data:
        raise InputError(f"mapping={str(path)!r}: has no 'mapping' key; pass the metrics.json of misseg.evaluate")
    mapping = np.asarray(data["mapping"], dtype=np.int64)
    if mapping.shape != (K,):
        raise InputError(
            f"mapping={str(path)!r}: maps {mapping.size} clusters but the checkpoint has K={K}; "
            "use the metrics.json written for this checkpoint"
        )
    num_classes = int(mapping.max()) + 1 if mapping.size else 0
    names = list(data.get("class_names") or [f"class {c}" for c in range(num_classes)])
    if num_classes > len(names) or mapping.min() < -1:
        raise InputError(f"mapping={str(path)!r}: mapping {mapping.tolist()} does not fit class_names {names}")
    return mapping, [str(n) for n in names]


def apply_mapping(classes: torch.Tensor, mapping: np.ndarray | None) -> torch.Tensor:
    """Cluster map -> class map with UNMATCHED (255) for clusters mapped to -1; identity without mapping."""
    if mapping is None:
        return classes
    lut = torch.as_tensor(mapping, device=classes.device)
    lut = torch.where(lut < 0, torch.full_like(lut, UNMATCHED), lut)
    return lut[classes]


_TAB10 = ("1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf")


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 distinct colours: matplotlib's tab10, then golden-angle hues (deterministic)."""
    colours = [tuple(int(h[i : i + 2], 16) for i in (0, 2, 4)) for h in _TAB10[:n]]
    for k in range(len(colours), n):
        hue = (k * 0.618033988749895) % 1.0
        colours.append(tuple(int(255 * c) for c in _hsv_to_rgb(hue, 0.75, 0.95)))
    return np.asarray(colours, dtype=np.uint8).reshape(n, 3)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, s, v)


def overlay(image: torch.Tensor, classes: torch.Tensor, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 image (3, H, W) + class map (H, W) -> (H, W, 3) uint8 blend; UNMATCHED pixels keep the image."""
    img = image.permute(1, 2, 0).cpu().numpy().astype(np.float32)
    cls = classes.cpu().numpy()
    lut = np.zeros((max(int(cls.max()) + 1, len(colours), UNMATCHED + 1), 3), np.float32)
    lut[: len(colours)] = colours
    painted = np.where((cls != UNMATCHED)[..., None] & (cls < len(colours))[..., None], lut[cls], img)
    return ((1 - alpha) * img + alpha * painted).round().clip(0, 255).astype(np.uint8)


def legend_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` px (a scalable font since Pillow 10.1; the fixed 11 px bitmap before)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def draw_legend(picture: np.ndarray, names: Sequence[str], colours: np.ndarray) -> np.ndarray:
    """Colour boxes and names in the top-left corner of an (H, W, 3) uint8 picture, sized with the picture:
    a line is 1/30 of the shorter side (>= 12 px), so the legend reads the same on a thumbnail and on a
    4000 px photo."""
    im = Image.fromarray(picture)
    draw = ImageDraw.Draw(im)
    line = max(12, min(im.size) // 30)
    pad = max(4, line // 4)
    font = legend_font(line)
    stroke = max(1, line // 12)
    for k, name in enumerate(names):
        y = pad + k * (line + pad)
        draw.rectangle(
            [pad, y, pad + line, y + line], fill=tuple(int(c) for c in colours[k]), outline=(0, 0, 0), width=stroke
        )
        draw.text(
            (2 * pad + line, y),
            str(name),
            font=font,
            fill=(255, 255, 255),
            stroke_width=stroke,
            stroke_fill=(0, 0, 0),
        )
    return np.asarray(im)


def class_map_array(classes: torch.Tensor) -> np.ndarray:
    """Class map -> uint8 array for a PNG (uint16 when there are more than 255 labels)."""
    arr = classes.cpu().numpy()
    return arr.astype(np.uint8) if arr.max(initial=0) <= 255 else arr.astype(np.uint16)


def save_png_new(array: np.ndarray, path: Path) -> None:
    """Write a PNG, never replacing a file: mode "xb" fails if `path` appeared since the up-front check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:
        Image.fromarray(array).save(f, format="PNG")


def save_npy_new(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:
        np.save(f, array)


def output_stems(paths: Sequence[Path]) -> list[str]:
    """File stems as output names; names sharing a stem (a.jpg, a.png) keep their suffix (a.jpg, a.png)."""
    stems = [p.stem for p in paths]
    return [p.name if stems.count(p.stem) > 1 else p.stem for p in paths]
