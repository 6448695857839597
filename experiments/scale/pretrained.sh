#!/usr/bin/env bash
# Section 10: the reference the diagnosis asks for, a pretrained network (ImageNet-supervised EfficientNet-Lite0,
# the one set of pretrained image weights the package registries ship: pretrained_weights.py). Same budget and
# seeds as sections 4-7 (64 px, P = 256, batch 16, Adam 1e-3, 450 steps, seeds 0-2), ccp_persons:
#   mi_corr_effnet   the correspondence lever (weight 1, as mi_corr) with the pretrained network as its frozen
#                    reference (model/reference=effnet_lite0) instead of the random-init copy of C; C unchanged
#   mi_effnet_frozen the thesis's objective on the frozen pretrained network (model/encoder=effnet_lite0,
#                    freeze=true; only the 1x1 projection to L and the heads train: STEGO's frozen backbone)
# (IIC on the same frozen network was planned and not run: the session's CPU time went to pretrained_x4.sh and
# the oracle test), and the frozen network's own probes before any training (evaluate init=initial). Then each run's diagnosis
# (diagnose.sh: probes, random init), and correspondence.py on the lever's checkpoints (its "reference" rows).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/pretrained.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
W=$(weights_file)
effnet="model/encoder=effnet_lite0 model.encoder.weights=$W model.encoder.freeze=true"
set_k="ccp_persons 2"
for seed in 0 1 2; do
  lever $set_k $seed mi_corr_effnet model.objective.correspondence_weight=1 model/reference=effnet_lite0 \
    model.reference.weights="$W" &
  budget=$timm_budget lever $set_k $seed mi_effnet_frozen $effnet
  wait
done
d="$RUNS/small/ccp_persons/seed0/mi_effnet_frozen"  # the frozen network before training: its weights, a seeded 1x1
run "$d/diag/initial/ccp_persons" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
  $(data ccp_persons) $eval_args probe=all init=initial
for seed in 0 1 2; do
  c="$RUNS/small/ccp_persons/seed$seed/mi_corr_effnet/checkpoints/step00450.ckpt"
  out="$RUNS/small/ccp_persons/seed$seed/mi_corr_effnet/correspondence.md"
  [ -f "$out" ] || "$PY" experiments/scale/correspondence.py "$SMALL/ccp_persons" "$c" > "$out"
done
