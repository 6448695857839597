#!/usr/bin/env bash
# Section 10, second step: the correspondence lever with the pretrained reference read at 4x input scale
# (model/reference=effnet_lite0_x4), whose matches join same-class patches of ccp_persons 0.818 of the time against
# 0.711 for pretrained.sh's effnet_lite0 reference (chance 0.525; pretrained_probe/corr_layers.py in the README).
# Everything else as pretrained.sh's mi_corr_effnet. Three seeds, one after the other (pretrained.sh's IIC runs
# take the other core).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/pretrained_x4.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
W=$(weights_file)
for seed in 0 1 2; do
  lever ccp_persons 2 $seed mi_corr_effnet4 model.objective.correspondence_weight=1 \
    model/reference=effnet_lite0_x4 model.reference.weights="$W"
done
for seed in 0 1 2; do
  c="$RUNS/small/ccp_persons/seed$seed/mi_corr_effnet4/checkpoints/step00450.ckpt"
  out="$RUNS/small/ccp_persons/seed$seed/mi_corr_effnet4/correspondence.md"
  [ -f "$out" ] || "$PY" experiments/scale/correspondence.py "$SMALL/ccp_persons" "$c" > "$out"
done
