"""Which reading of the pretrained network makes the best correspondence reference? (section 10)

Usage: python experiments/scale/reference_layers.py DATA_DIR WEIGHTS   (one markdown row per reading)

correspondence.py's protocol (seeded batches of 16 images, 64 px centre crops, partner = the closest other image,
each patch matched to its closest patch there; precision = matches whose patch labels agree, chance = the same for
a random valid patch of that partner; labels for this evaluation only), applied to the ImageNet EfficientNet-Lite0
(WEIGHTS: pretrained_weights.py's file) read at several layers and input scales, before any training.
"""

from __future__ import annotations

import torch
from _cli import eval_view  # experiments/scale/_cli.py: the 64 px eval view
from correspondence import patch_labels, score  # experiments/scale/correspondence.py

from misseg.diagnostics.shortcut import seeded_batches
from misseg.models.backbone import BackboneError, TimmBackbone
from misseg.runs.errors import ConfigError, OneLineArgumentParser, existing_dir, existing_file, reported_errors

PROG = "experiments/scale/reference_layers.py"
READINGS = {  # name: TimmBackbone options (P=None: the raw features)
    "deepest (320 ch), dilated to stride 8, input x2 (model/reference=effnet_lite0)": dict(
        stride=8, dilate=True, upsample=2
    ),
    "deepest (320 ch), dilated to stride 16, input x4 (model/reference=effnet_lite0_x4)": dict(
        stride=16, dilate=True, upsample=4
    ),
    "stage 4 (112 ch), stride 16, input x2": dict(stride=16, upsample=2),
    "stage 3 (40 ch), stride 8, input x2": dict(stride=8, upsample=2),
    "deepest (320 ch), dilated to stride 8, input x1": dict(stride=8, dilate=True, upsample=1),
}


def table(root: str, weights: str) -> None:
    data = eval_view(root)
    for i, (name, options) in enumerate(READINGS.items()):
        net = TimmBackbone("tf_efficientnet_lite0", P=None, **options)
        try:
            net.load_weights(weights)
        except BackboneError as e:  # a file of another network: the one line of misseg's user errors
            raise ConfigError(f"WEIGHTS {weights}: {e}") from None
        net.eval()
        scores = []
        for x, masks in seeded_batches(data.val_set):
            with torch.no_grad():
                f = net(x)
            labels, valid = patch_labels(masks, tuple(f.shape[-2:]), data.num_classes)
            scores.append(score(f, labels, valid, labels))  # clusters := labels: the agreement cell is unused
        mean = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
        if i == 0:
            print("| reading | grid | precision | chance | within 1 patch |\n|---|---|---|---|---|")
        grid = f"{f.shape[-2]}x{f.shape[-1]}"
        cells = " | ".join(f"{mean[k]:.3f}" for k in ("precision", "chance", "within 1 patch"))
        print(f"| {name} | {grid} | {cells} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("data", metavar="DATA_DIR", type=existing_dir("pass a folder set made by make_data.py"))
    ap.add_argument("weights", metavar="WEIGHTS", type=existing_file("pass the file pretrained_weights.py wrote"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with reported_errors(f"{PROG}: error"):  # a malformed set or weights file: misseg's one line, exit 2
        table(args.data, args.weights)


if __name__ == "__main__":
    main()
