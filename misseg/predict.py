"""python -m misseg.predict ckpt_path=PATH input=DIR_OR_FILE [output=DIR] [mapping=metrics.json]: segment images.

Hydra glue over misseg/deploy/inference.py: masks at the original resolution, overlays, confidence maps.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from misseg.deploy import inference as inf
from misseg.lit.build import load_module
from misseg.runs.config import config_dir
from misseg.runs.errors import ConfigError, OutputExistsError, reported_errors
from misseg.runs.validation import precheck

DEFAULT_SIZE = 128


class ImageFiles(Dataset):
    """Decodes images in DataLoader workers: (index, uint8 (3, H, W))."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        return i, inf.load_image(self.paths[i])


def training_image_size(ckpt_path: str | Path) -> int | None:
    """data.resize_shorter (else data.image_size) from RUN/.hydra/config.yaml of RUN/checkpoints/<x>.ckpt."""
    cfg_path = Path(ckpt_path).expanduser().resolve().parent.parent / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        return None
    cfg = OmegaConf.load(cfg_path)
    for key in ("data.resize_shorter", "data.image_size"):
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if isinstance(value, int) and value > 0:
            return value
    return None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise inf.InputError(f"device={name}: CUDA is not available here; use device=cpu or device=auto")
    return torch.device(name)


def output_paths(out: Path, stem: str, cfg: DictConfig) -> dict[str, Path]:
    paths = {"mask": out / "masks" / f"{stem}.png"}
    if cfg.overlay:
        paths["overlay"] = out / "overlays" / f"{stem}.png"
    if cfg.confidence in ("png", "npy"):
        paths["confidence"] = out / "confidence" / f"{stem}.{cfg.confidence}"
    elif cfg.confidence not in ("none", None):
        raise inf.InputError(f"confidence={cfg.confidence!r}: use png, npy or none")
    return paths


def plan_outputs(cfg: DictConfig, out: Path) -> tuple[list[Path], list[dict[str, Path]]]:
    """The input images and their output files; refuses bad options and existing outputs before any work
    (run by the command-line check before Hydra creates a directory, and again by predict())."""
    if cfg.policy not in inf.POLICIES:
        raise inf.InputError(f"policy={cfg.policy!r}: use one of {inf.POLICIES}")
    if not Path(str(cfg.ckpt_path)).expanduser().is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    if cfg.mapping and not Path(str(cfg.mapping)).expanduser().is_file():
        raise inf.InputError(f"mapping={cfg.mapping}: no such file (the metrics.json of a training run)")
    files = inf.list_images(cfg.input)
    targets = [output_paths(out, stem, cfg) for stem in inf.output_stems(files)]
    summary_path = out / "predict.json"
    existing = [p for t in targets for p in t.values() if p.exists()] + [summary_path] * summary_path.exists()
    if existing:  # checked before any compute: never overwrite results, and never stop half-way for it
        raise OutputExistsError(
            f"output={str(out)!r}: {len(existing)} output file(s) exist already, "
            f"e.g. {[str(p) for p in existing[:3]]}; choose a new output=DIR "
            "(or leave output unset for a fresh run directory)"
        )
    return files, targets


def predict(cfg: DictConfig) -> dict:
    start = time.perf_counter()
    out = Path(cfg.output or HydraConfig.get().runtime.output_dir).expanduser()
    files, targets = plan_outputs(cfg, out)
    summary_path = out / "predict.json"
    ignored = inf.ignored_files(cfg.input)
    if ignored:  # never skipped without a word
        shown = ", ".join(p.name for p in ignored[:5]) + (", ..." if len(ignored) > 5 else "")
        print(f"input: skipped {len(ignored)} file(s) that are not images ({shown})", file=sys.stderr)

    device = resolve_device(str(cfg.device))
    module = load_module(cfg.ckpt_path)
    model = module.model.to(device).eval()
    K = model.K
    size = cfg.size or training_image_size(cfg.ckpt_path)
    if size is None:
        size = DEFAULT_SIZE
        print(f"size: no training config next to {cfg.ckpt_path}; using {size} (set size=N)")
    if cfg.mapping:
        mapping, names = inf.load_mapping(cfg.mapping, K)
    else:
        mapping, names = None, [f"cluster {k}" for k in range(K)]
    colours = inf.palette(len(names))

    loader = DataLoader(
        ImageFiles(files),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=list,  # images of any size: a list, grouped by shape in predict_probs
    )
    bar = tqdm(total=len(files), unit="img", disable=not cfg.progress or len(files) == 1)
    for chunk in loader:
        images = [im for _, im in chunk]
        probs = inf.predict_probs(model, images, cfg.policy, size, cfg.overlap, cfg.batch_size, device)
        for (i, image), p in zip(chunk, probs, strict=True):
            clusters, confidence = inf.upsample_argmax(p, tuple(image.shape[1:]))
            classes = inf.apply_mapping(clusters, mapping)
            t = targets[i]
            inf.save_png_new(inf.class_map_array(classes), t["mask"])
            if "overlay" in t:
                picture = inf.overlay(image, classes, colours, cfg.alpha)
                if cfg.legend:
                    picture = inf.draw_legend(picture, names, colours)
                inf.save_png_new(picture, t["overlay"])
            if cfg.confidence == "png":
                inf.save_png_new((confidence * 255).round().byte().cpu().numpy(), t["confidence"])
            elif cfg.confidence == "npy":
                inf.save_npy_new(confidence.half().cpu().numpy(), t["confidence"])
        bar.update(len(chunk))
    bar.close()

    seconds = time.perf_counter() - start
    summary = {
        "ckpt_path": str(cfg.ckpt_path),
        "input": str(cfg.input),
        "num_images": len(files),
        "K": K,
        "policy": cfg.policy,
        "size": int(size),
        "device": str(device),
        "seconds": round(seconds, 2),
        "mask_values": "class index (mapping given)" if mapping is not None else "cluster index",
        "unmatched_value": inf.UNMATCHED if mapping is not None else None,
        "labels": [{"index": k, "name": n, "colour": [int(c) for c in colours[k]]} for k, n in enumerate(names)],
    }
    with open(summary_path, "x") as f:
        json.dump(summary, f, indent=2)
    print(f"{len(files)} image(s) in {seconds:.1f} s ({len(files) / seconds:.2f} img/s) on {device}")
    print(f"predictions: {out}")
    return summary


def _precheck(cfg: DictConfig) -> None:
    plan_outputs(cfg, Path(str(cfg.output or cfg.hydra.run.dir)).expanduser())
    resolve_device(str(cfg.device))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def hydra_main(cfg: DictConfig) -> None:
    with reported_errors():
        predict(cfg)


def main(argv: list[str] | None = None) -> None:
    """Check the command line, the input and the outputs before Hydra creates anything, then run."""
    with reported_errors():
        precheck(config_dir(), "predict", sys.argv[1:] if argv is None else argv, _precheck)
    hydra_main()


if __name__ == "__main__":
    main()
