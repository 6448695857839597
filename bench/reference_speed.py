"""Train-step time of the correspondence lever on a frozen timm encoder: a reference network of its own
(model/reference=effnet_lite0_x4, a second forward pass) vs the encoder's own kept body (model/reference=encoder_body).

python bench/reference_speed.py [--rounds 6] [--threads 1] [--weights FILE]

One training step (forward, loss, backward) of experiments/scale's section 28 setting: frozen EfficientNet-Lite0 read
at 4x, P = 256, K = 15 centroid heads, the K H_k as negatives, entropy 1, the affine critic, correspondence weight 1;
batch 16 x 3 x 64 x 64 on the CPU. The two take turns in every round (a load spike hits both); the first round is a
warm-up; the median, the min-max and the per-round ratio are printed. --weights: the ImageNet file of
experiments/scale/pretrained_weights.py (speed does not depend on it; without it both bodies are the same random draw).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from misseg.lit.build import build_module, compose_model

SETTING = [
    "K=15",
    "P=256",
    "model/encoder=effnet_lite0_x4",
    "encoder.freeze=true",
    "model/heads=centroids",
    "objective.critic=affine",
    "objective.negatives=heads",
    "objective.entropy_weight=1",
    "objective.correspondence_weight=1",
]


def step_seconds(module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    module.training_step({"image": x}, 0)["loss"].backward()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="rounds, the first a warm-up (default 6)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--weights", default=None, help="the encoder's (and the second network's) weights file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights = [f"encoder.weights={args.weights}"] if args.weights else []
    own = ["model/reference=effnet_lite0_x4"] + ([f"reference.weights={args.weights}"] if args.weights else [])
    modules = {
        "second network (model/reference=effnet_lite0_x4)": compose_model("mi", [*SETTING, *weights, *own]),
        "encoder's body (model/reference=encoder_body)": compose_model(
            "mi", [*SETTING, *weights, "model/reference=encoder_body"]
        ),
    }
    modules = {name: build_module(cfg, 15) for name, cfg in modules.items()}
    for m in modules.values():
        m.setup("fit")  # loads the weights files
        m.train()
    x = torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    times = {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, m in modules.items():
            times[name].append(step_seconds(m, x))
    for name, t in times.items():
        t = t[1:]
        print(f"{name}: median {statistics.median(t):.2f} s/step ({min(t):.2f}-{max(t):.2f}), {len(t)} rounds")
    a, b = (t[1:] for t in times.values())
    print("ratio per round:", " ".join(f"{x / y:.2f}" for x, y in zip(a, b, strict=True)))


if __name__ == "__main__":
    main()
