"""Image files as every entry point reads them: one list of formats, one decoder (training, scan, predict)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# the formats training (folder datasets, the start-up scan) and misseg.predict accept; masks stay PNG
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def non_image_entries(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Entries of `folder` that are not read as images (notes.txt, .DS_Store, subfolders), sorted: reported
    to the user, never skipped without a word."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if not (p.is_file() and p.suffix.lower() in suffixes))


def rgb_array(path: str | Path) -> np.ndarray:
    """Any mode (L, LA, RGBA, P, CMYK, I;16), EXIF orientation applied -> (H, W, 3) uint8 RGB.

    16/32-bit grey is scaled to 8 bits (not clipped); transparent pixels are composited on white (dropping
    alpha would show whatever colour they hide). Raises PIL's errors (UnidentifiedImageError, OSError).
    """
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            im = Image.fromarray((arr * 255.0 / max(float(arr.max()), 1.0)).astype(np.uint8))
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return np.array(im.convert("RGB"))
