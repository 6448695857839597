#!/usr/bin/env bash
# Diagnosis on the multi-class small sets (CamVid, COCO-Stuff-15 view): MI (paper-faithful) and IIC trained for
# STEPS steps at common.sh's budget (the small_real one), checkpoints every 150 steps (callbacks=steps); then
# diagnose.sh on each (linear probe, K-means on L, the random-init reference). One process at a time, one thread.
# Usage: [STEPS=450] [SEED=0] bash experiments/scale/diagnose_small.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
STEPS=${STEPS:-450}
for spec in camvid:11:false coco_stuff15:15:true; do
  IFS=: read -r set K ignore <<< "$spec"
  for method in mi iic; do
    d="$RUNS/small/$set/seed$SEED/$method"
    run "$d" misseg.train model=$method $(data "$set") $budget $ckpts trainer.max_steps="$STEPS" report=false \
      model.K="$K" model.ignore_in_loss="$ignore"
    STEPS="$(printf '%05d' "$STEPS")" bash experiments/scale/diagnose.sh "$d" "$set"
  done
done
