"""Run-directory outputs shared by the entry points: metrics.json and the closing line."""

from __future__ import annotations

import json
from pathlib import Path


def write_metrics(run_dir: str | Path, result: dict, class_names: list[str] | None = None) -> Path:
    """metrics.json: pa, miou, per_class_iou, mapping, num_pixels, num_images (+ class names, confusion)."""
    out = dict(result)
    if class_names is not None:
        out["class_names"] = list(class_names)
    path = new_file(Path(run_dir) / "metrics.json")
    path.write_text(json.dumps(out, indent=2, allow_nan=True))
    return path


def new_file(path: str | Path) -> Path:
    """`path` if it does not exist, else the first free `stem-1.ext`, `stem-2.ext`, ...: outputs
    (metrics, predictions) never overwrite an earlier file."""
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
