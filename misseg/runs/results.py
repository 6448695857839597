"""Run-directory outputs shared by the entry points: metrics.json, the final metrics for the loggers, and the
summary printed at the end of misseg.train / misseg.evaluate."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# What the arrays of metrics.json mean (misseg/metrics/matching.py): written into every metrics.json, so a
# reader never has to guess a direction or an orientation.
MAPPING_DIRECTION = (
    "cluster -> class: mapping[c] is the class index (into class_names) cluster c is matched to; -1 = unmatched"
)
CONFUSION_ORIENTATION = (
    "rows = predicted clusters (K), columns = true classes: confusion[c][k] = pixels of cluster c whose "
    "true class is k (pixels labelled 255 = ignore are not counted); figures/confusion.png shows it after "
    "matching and the other way round (rows = true class)"
)
WEIGHTS_LAST = "last"  # misseg.train scores the weights at the end of training


def metrics_record(
    result: Mapping[str, Any], class_names: Sequence[str] | None = None, weights: str | None = None
) -> dict:
    """The metrics.json content: the metric result (pa, miou, per_class_iou, mapping, confusion, num_pixels,
    num_images, matching) + class_names + which weights were scored + what mapping and confusion mean."""
    out = dict(result)
    if class_names is not None:
        out["class_names"] = list(class_names)
    if weights is not None:
        out["weights"] = weights
    if "mapping" in out:
        out["mapping_direction"] = MAPPING_DIRECTION
    if "confusion" in out:
        out["confusion_orientation"] = CONFUSION_ORIENTATION
    return out


def write_metrics(
    run_dir: str | Path, result: Mapping[str, Any], class_names: Sequence[str] | None = None, weights: str | None = None
) -> Path:
    """metrics.json (metrics_record), never overwriting an earlier one (metrics-1.json, ...)."""
    path = new_file(Path(run_dir) / "metrics.json")
    path.write_text(json.dumps(metrics_record(result, class_names, weights), indent=2, allow_nan=True))
    return path


def figures_dir(metrics_path: str | Path) -> Path:
    """The figures folder of a metrics file: metrics.json -> figures/, metrics-1.json -> figures-1/, so the
    pictures of a resumed run sit beside its own metrics and never replace those of an earlier start."""
    metrics_path = Path(metrics_path)
    return metrics_path.parent / f"figures{metrics_path.stem[len('metrics') :]}"


def new_file(path: str | Path) -> Path:
    """`path` if it does not exist, else the first free `stem-1.ext`, `stem-2.ext`, ...: outputs
    (metrics, predictions) never overwrite an earlier file."""
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def log_final_metrics(loggers: Sequence[Any], result: Mapping[str, Any], step: int) -> None:
    """final/pa, final/miou (+ final/iou/<class>) into every Lightning logger at the last training step: the
    final evaluation is a result, not one more epoch of the training curve."""
    values = {f"final/{k}": float(result[k]) for k in ("pa", "miou") if k in result}
    for logger in loggers:
        logger.log_metrics(values, step=step)
        logger.save()


def _score(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a (class absent and never predicted)"
    return f"{float(value):.3f}"


def format_summary(
    metrics: Mapping[str, Any],
    run_dir: str | Path,
    metrics_path: str | Path | None = None,
    figures: Mapping[str, str | Path] | None = None,
) -> str:
    """The lines printed at the end of a run: which weights were scored and how, PA, mIoU, the IoU of each
    class by name, and where the files are. `metrics` is a metrics_record (empty: evaluation was off)."""
    run_dir = Path(run_dir)
    lines = []
    if metrics:
        weights = metrics.get("weights")
        matching = {"hungarian": "Hungarian (one-to-one)", "majority": "majority vote (many-to-one)"}.get(
            metrics.get("matching", ""), metrics.get("matching")
        )
        how = ", ".join(
            str(part)
            for part in (
                f"weights: {weights}" if weights else None,
                f"clusters matched by {matching}" if matching else None,
                f"{metrics['num_images']} images" if "num_images" in metrics else None,
            )
            if part
        )
        lines.append(f"evaluation ({how}):" if how else "evaluation:")
        lines.append(f"  PA   {_score(metrics.get('pa'))}")
        lines.append(f"  mIoU {_score(metrics.get('miou'))}")
        ious = list(metrics.get("per_class_iou") or [])
        if ious:
            names = list(metrics.get("class_names") or [f"class {k}" for k in range(len(ious))])
            width = max(len(str(n)) for n in names)
            lines.append("  IoU per class:")
            lines += [f"    {str(name):<{width}}  {_score(iou)}" for name, iou in zip(names, ious, strict=False)]
    lines.append(f"run directory: {run_dir}")
    if metrics_path:
        lines.append(f"  metrics:  {metrics_path}")
    if figures:
        folder = Path(next(iter(figures.values()))).parent
        lines.append(f"  figures:  {folder}/ ({', '.join(Path(p).name for p in figures.values())})")
    return "\n".join(lines)
