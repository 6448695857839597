"""One-pass start-up scan of a folder dataset: every bad file is found before training, not one crash per file.

Checks: images without a mask, masks without an image, two images with one id, unreadable or truncated
images/masks (PIL verify + full decode), masks that are not single-channel, masks whose size differs from
their (EXIF-rotated) image, mask values >= the number of classes that are not 255 (ignore).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from misseg.data.images import IMAGE_SUFFIXES, non_image_entries
from misseg.runs.errors import DatasetError
from misseg.runs.provenance import available_cores

MASK_SUFFIX = ".png"
IGNORE = 255
# EXIF orientations 5..8 rotate by 90 degrees: the loaded image (ImageOps.exif_transpose) has W and H swapped
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
PREPARE_HINT = "for COCO, make one with `python -m misseg.data.prepare`"


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ScanReport:
    """pairs: the usable (image, mask) pairs sorted by id; bad: every problem found; ignored: files in
    images/ and masks/ that are not read at all (notes.txt, .DS_Store: not errors, but reported); min_side:
    the smallest shorter side among the usable images (None when contents were not read)."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)
    ignored: list[BadFile] = field(default_factory=list)
    min_side: int | None = None
    min_side_path: Path | None = None


class BadFilesError(DatasetError):
    """The scan found bad files and data.on_bad_file=stop; `bad` holds them all (the message only the first)."""

    def __init__(self, message: str, bad: list[BadFile]) -> None:
        super().__init__(message)
        self.bad = bad


def read_class_names(root: Path) -> list[str]:
    path = root / "classes.txt"
    if not path.is_file():
        raise DatasetError(f"{path}: missing. A folder dataset needs classes.txt (one class name per line).")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise DatasetError(f"{path}: lists {len(names)} class(es); at least 2 are needed.")
    return names


def _check_layout(root: Path) -> tuple[Path, Path]:
    """The folders themselves: missing root / images / masks or no image at all stop at once (nothing to skip)."""
    if not root.is_dir():
        raise DatasetError(
            f"data.root={root}: no such directory. Point data.root at a folder with images/, masks/ and "
            f"classes.txt ({PREPARE_HINT})."
        )
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise DatasetError(
            f"{images_dir}: not found. Point data.root at a folder with images/, masks/ and classes.txt "
            f"({PREPARE_HINT})."
        )
    if not masks_dir.is_dir():
        raise DatasetError(f"{masks_dir}: not found. Each images/<id>.<ext> needs masks/<id>.png ({PREPARE_HINT}).")
    return images_dir, masks_dir


def pair_files(root: Path) -> tuple[list[tuple[Path, Path]], list[BadFile]]:
    """Match images/<id>.* with masks/<id>.png by id, without opening any file."""
    images_dir, masks_dir = _check_layout(root)
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DatasetError(f"{images_dir}: holds no image ({', '.join(IMAGE_SUFFIXES)}; {PREPARE_HINT}).")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == MASK_SUFFIX and p.is_file()}
    by_id: dict[str, list[Path]] = {}
    for p in images:
        by_id.setdefault(p.stem, []).append(p)
    pairs, bad = [], []
    for stem, paths in sorted(by_id.items()):
        if len(paths) > 1:
            bad += [BadFile(p, f"{len(paths)} images share the id {stem!r}; keep one") for p in paths]
        elif stem not in masks:
            bad.append(BadFile(paths[0], f"no mask {masks_dir / (stem + MASK_SUFFIX)}"))
        else:
            pairs.append((paths[0], masks[stem]))
    bad += [BadFile(m, "mask without an image in images/") for stem, m in sorted(masks.items()) if stem not in by_id]
    return pairs, bad


def ignored_files(root: Path) -> list[BadFile]:
    """Entries of images/ and masks/ that pairing does not read: not an image format, a mask that is not a
    PNG, a subfolder, a hidden file (.DS_Store)."""
    images = [
        BadFile(p, "a folder: subfolders are not read" if p.is_dir() else f"not an image ({', '.join(IMAGE_SUFFIXES)})")
        for p in non_image_entries(root / "images")
    ]
    masks = [
        BadFile(p, "a folder: subfolders are not read" if p.is_dir() else f"not a mask (masks are {MASK_SUFFIX} files)")
        for p in non_image_entries(root / "masks", (MASK_SUFFIX,))
    ]
    return images + masks


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) after EXIF rotation; raises on a corrupt or truncated file (verify checks structure, load decodes)."""
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        im.load()
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (w, h) if orientation in _TRANSPOSED_ORIENTATIONS else (h, w)


def check_pair(image: Path, mask: Path, num_classes: int) -> tuple[list[BadFile], int | None]:
    """All problems of one (image, mask) pair, and the image's shorter side (None if unreadable)."""
    try:
        size = _image_size(image)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return [BadFile(image, f"unreadable or truncated image ({type(e).__name__}: {e})")], None
    try:
        with Image.open(mask) as m:
            m.verify()
        with Image.open(mask) as m:
            arr = np.asarray(m)
    except Exception as e:
        return [BadFile(mask, f"unreadable or truncated mask ({type(e).__name__}: {e})")], min(size)
    if arr.ndim != 2:
        return [BadFile(mask, f"mask has shape {arr.shape}; masks are single-channel class-index PNGs")], min(size)
    problems = []
    if arr.shape != size:
        problems.append(BadFile(mask, f"mask is {arr.shape} (H, W) but {image.name} is {size}"))
    values = np.unique(arr)
    wrong = values[(values >= num_classes) & (values != IGNORE)]
    if wrong.size:
        problems.append(
            BadFile(
                mask,
                f"mask values {wrong[:8].tolist()} >= {num_classes} classes (classes.txt) and != {IGNORE} (ignore)",
            )
        )
    return problems, min(size)


def scan_folder(
    root: str | Path, num_classes: int, verify_files: bool = True, workers: int | None = None
) -> ScanReport:
    """Pair the files, then (verify_files) open every pair in a thread pool (PIL decodes without the GIL)."""
    root = Path(root)
    pairs, bad = pair_files(root)
    report = ScanReport(bad=bad, ignored=ignored_files(root))
    if not verify_files:
        report.pairs = pairs
        return report
    workers = workers or min(8, available_cores())  # the affinity mask under SLURM/taskset, not the node
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: check_pair(p[0], p[1], num_classes), pairs))
    for pair, (problems, side) in zip(pairs, results, strict=True):
        if problems:
            report.bad += problems
            continue
        report.pairs.append(pair)
        if side is not None and (report.min_side is None or side < report.min_side):
            report.min_side, report.min_side_path = side, pair[0]
    report.bad.sort(key=lambda b: str(b.path))
    return report


def bad_files_message(root: Path, bad: list[BadFile], shown: int = 5) -> str:
    head = "; ".join(f"{_relative(b.path, root)}: {b.reason}" for b in bad[:shown])
    more = f"; ... and {len(bad) - shown} more" if len(bad) > shown else ""
    return (
        f"data.root={root}: {len(bad)} bad file(s): {head}{more}. Fix or remove them, or set "
        "data.on_bad_file=skip to train without them (the list is written to the run directory)."
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write_bad_files(path: str | Path, bad: list[BadFile]) -> Path:
    path = Path(path)
    path.write_text("".join(f"{b.path}\t{b.reason}\n" for b in bad))
    return path
