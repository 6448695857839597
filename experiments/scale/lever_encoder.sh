#!/usr/bin/env bash
# The thesis's regime, receptive field: the paper-faithful objective with the deeper encoder preset
# (model/encoder=thesis_deep: 8 blocks, 55 px receptive field at P = 2048, vs 23 px for the default `thesis`)
# at lever_positions.sh's budget (450 steps, 64 px, width 32, P = 256), seeds 0-2, on ccp_persons and CamVid.
# Compared with the `mi` rows of lever_positions.sh (same seeds, default encoder). Each run is diagnosed
# (linear probe, K-means on L, random init of the same deeper architecture) and its clusters described.
# Usage: bash experiments/scale/lever_encoder.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
train() {  # train SET K SEED
  local d="$RUNS/small/$1/seed$3/mi_deep"
  SEED=$3 run "$d" misseg.train $(SEED=$3 data "$1") $budget $ckpts trainer.max_steps=450 report=false \
    model.K="$2" model/encoder=thesis_deep
  STEPS=00450 bash experiments/scale/diagnose.sh "$d" "$1"
  [ -f "$d/agreement.md" ] || "$PY" experiments/scale/agreement.py "$SMALL/$1" "$d/checkpoints/step00450.ckpt" \
    > "$d/agreement.md" 2>/dev/null
}
for set_k in "ccp_persons 2" "camvid 11"; do
  train $set_k 0 &
  train $set_k 1
  wait
  train $set_k 2
done
