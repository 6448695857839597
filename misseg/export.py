"""python -m misseg.export ckpt_path=PATH format=onnx out=model.onnx [mapping=metrics.json]: a standalone model.

The ONNX graph takes RGB in [0, 1], (B, 3, H, W) float32, with dynamic B, H and W, normalizes it itself and
returns probs = p' upsampled to (H, W) (B, K, H, W), classes = argmax (B, H, W) int64 and confidence = max
(B, H, W). Preprocessing left to the caller: resize the shorter side to `size` (metadata key misseg.size),
H and W multiples of misseg.stride; resize `classes` back to the original size with nearest sampling.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import warnings
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from misseg.deploy.inference import load_mapping
from misseg.lit.build import load_module
from misseg.runs.config import config_dir
from misseg.runs.errors import ConfigError, OutputExistsError, reported_errors
from misseg.runs.validation import precheck

FORMATS = ("onnx",)


def pool_matrix(n: int | torch.Tensor, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, n) averaging matrix with the bins of adaptive_avg_pool: [floor(i n / out), ceil((i + 1) n / out))."""
    idx = torch.arange(n, device=like.device)
    i = torch.arange(out, device=like.device)
    start = torch.div(i * n, out, rounding_mode="floor")
    end = torch.div((i + 1) * n + out - 1, out, rounding_mode="floor")
    m = ((idx[None] >= start[:, None]) & (idx[None] < end[:, None])).to(like.dtype)
    return m / m.sum(1, keepdim=True)


class MatrixAdaptiveAvgPool2d(nn.Module):
    """AdaptiveAvgPool2d as two matrix products. The ONNX exporter cannot export adaptive pooling to a size
    that does not divide a dynamic input size; this form exports with dynamic H, W and computes the same."""

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ah = pool_matrix(z.shape[-2], self.output_size, z)
        aw = pool_matrix(z.shape[-1], self.output_size, z)
        return torch.einsum("ih,bchw,jw->bcij", ah, z, aw)


class ExportSegmenter(nn.Module):
    """[0, 1] RGB (B, 3, H, W) -> probs (B, K, H, W), classes (B, H, W), confidence (B, H, W)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()  # a copy: the caller's model keeps its own pooling layer
        for name, module in list(self.model.named_modules()):
            if isinstance(module, nn.AdaptiveAvgPool2d):
                parent = self.model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self.model
                setattr(parent, name.rsplit(".", 1)[-1], MatrixAdaptiveAvgPool2d(module.output_size))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L, H = self.model((image - self.mean) / self.std)
        p = self.model.probs(L, H)  # over the K classes (over-clustered centres merged)
        p = F.interpolate(p, size=image.shape[-2:], mode="bilinear", align_corners=False)
        confidence, classes = p.max(dim=1)
        return p, classes, confidence


def export_onnx(
    model: nn.Module,
    out: str | Path,
    example_size: tuple[int, int] = (64, 64),
    opset: int = 17,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write `model` (a MISegmenter) as ONNX with dynamic batch, height and width; never replaces a file."""
    out = Path(out).expanduser()
    if out.exists():
        raise OutputExistsError(f"out={str(out)!r} exists already; choose a new out=PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportSegmenter(model).eval()  # eval: export restores the wrapper's mode afterwards
    example = torch.rand(2, 3, *example_size)
    tmp = out.with_name(out.name + ".partial")
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    for name in ("probs", "classes", "confidence"):
        dynamic[name] = {0: "batch", **({2: "height", 3: "width"} if name == "probs" else {1: "height", 2: "width"})}
    with warnings.catch_warnings():
        # the TorchScript exporter: the torch.export one needs onnxscript (not a dependency) and is not
        # needed for this graph; its deprecation and tracer warnings are expected here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            dynamo=False,
            opset_version=opset,
            input_names=["image"],
            output_names=["probs", "classes", "confidence"],
            dynamic_axes=dynamic,
        )
    if metadata:
        import onnx

        proto = onnx.load(str(tmp))
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=str(value))
        onnx.save(proto, str(tmp))
    tmp.rename(out)  # a finished file or none: no half-written model under the requested name
    return out


def onnx_parity(model: nn.Module, path: str | Path, sizes=((2, 64, 64), (1, 48, 80))) -> float:
    """Max |ONNX Runtime - PyTorch| of probs over random inputs of several batch sizes and shapes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = ExportSegmenter(model).eval()
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for b, h, w in sizes:
        x = torch.rand(b, 3, h, w, generator=gen)
        with torch.no_grad():
            ref = wrapper(x)[0].numpy()
        got = session.run(["probs"], {"image": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_export_cfg(cfg: DictConfig) -> None:
    """Everything that can be refused before loading a model (and before Hydra starts)."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format!r}: supported formats are {', '.join(FORMATS)}")
    if not Path(str(cfg.ckpt_path)).expanduser().is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    if cfg.mapping and not Path(str(cfg.mapping)).expanduser().is_file():
        raise ConfigError(f"mapping={cfg.mapping}: no such file (the metrics.json of a training run)")
    out = Path(str(cfg.out)).expanduser()
    if out.exists():
        raise OutputExistsError(f"out={str(out)!r} exists already; choose a new out=PATH")


def export(cfg: DictConfig) -> Path:
    check_export_cfg(cfg)
    module = load_module(cfg.ckpt_path)
    model = module.model.eval()
    d = int(model.d)
    size = int(cfg.size)
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    meta = {
        "misseg.K": model.K,
        "misseg.size": size,
        "misseg.stride": d,
        "misseg.input": "RGB float32 in [0, 1], (B, 3, H, W); shorter side misseg.size, H and W multiples of "
        "misseg.stride",
        # the checkpoint's name and content hash, not its absolute path (which leaks the local layout and
        # says nothing once the file moves)
        "misseg.ckpt_name": ckpt.name,
        "misseg.ckpt_sha256": file_sha256(ckpt),
    }
    if cfg.mapping:
        mapping, names = load_mapping(cfg.mapping, model.K)
        meta["misseg.mapping"] = json.dumps(mapping.tolist())
        meta["misseg.class_names"] = json.dumps(names)
    side = max(d, size // d * d)
    out = export_onnx(model, cfg.out, example_size=(side, side), opset=cfg.opset, metadata=meta)
    print(f"wrote {out}")
    if cfg.check:
        err = onnx_parity(model, out, sizes=((2, side, side), (1, side, side + 2 * d)))
        print(f"ONNX Runtime vs PyTorch, max |probs difference| over 2 shapes: {err:.2e}")
    return out


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
def hydra_main(cfg: DictConfig) -> None:
    with reported_errors():
        export(cfg)


def main(argv: list[str] | None = None) -> None:
    """Check the command line before Hydra starts, then run; errors are one line, exit 2 (misseg.runs.errors)."""
    with reported_errors():
        precheck(config_dir(), "export", sys.argv[1:] if argv is None else argv, check_export_cfg)
    hydra_main()


if __name__ == "__main__":
    main()
