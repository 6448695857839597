#!/usr/bin/env bash
# Compute: does the correspondence lever's gain on ccp_persons hold, grow or vanish at 3.3x the steps (1,500)?
# Paper-faithful MI and the lever (weight 1, nearest partner), seeds 0-2, common.sh's budget otherwise; diagnosis
# (probes, random init) at step 1,500.
# Usage: bash experiments/scale/lever_correspondence_1500.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
train1500() {  # train1500 SEED NAME ARGS...
  local d="$RUNS/small1500/ccp_persons/seed$1/$2"
  SEED=$1 run "$d" misseg.train $(SEED=$1 data ccp_persons) $budget $ckpts trainer.max_steps=1500 report=false \
    model.K=2 "${@:3}"
  STEPS=01500 bash experiments/scale/diagnose.sh "$d" ccp_persons
}
for seed in 0 1 2; do
  train1500 $seed mi &
  train1500 $seed mi_corr model.objective.correspondence_weight=1
  wait
done
