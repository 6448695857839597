#!/usr/bin/env bash
# Section 14 (ninth session): does K-means on the L of the frozen ImageNet network after two-view MI (ccp_persons
# 0.692 +- 0.022 at 450 steps, section 13) hold at 3.3x the steps? From scratch the two-view gain was gone by step
# 1,500 (section 13), and picking step 450 after the fact would take the labels. lever_views_frozen.sh's run at
# 1,500 steps, into RUNS/small1500/ccp_persons/seedS/mi_views2_effnet4_frozen (a checkpoint every 150 steps; the
# step-450 one is the 450-step run's weights: constant lr), then for steps 450, 900 and 1,500 the K-means probe
# with 10 restarts (clusters and K-means on L, probe's test half) into RUN/diag/restarts/stepN/ccp_persons.
# SEEDS: default 0 1 2 (the ninth session ran seed 0 only: about an hour a run on one core); PROBE_STEPS: the
# checkpoints probed, in this order (default 00450 00900 01500).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [SEEDS="0 1 2"] [PROBE_STEPS="01500 00450"]
#        bash experiments/scale/lever_views_frozen_1500.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
check_seeds ${SEEDS:-0 1 2}
steps=${PROBE_STEPS:-00450 00900 01500}
for st in $steps; do  # a checkpoint of the 150-step grid up to 1,500, as its file is named
  [[ $st =~ ^0[01][0-9]{3}$ ]] && (( 10#$st % 150 == 0 && 10#$st > 0 && 10#$st <= 1500 )) || {
    echo "PROBE_STEPS: '$st' names no checkpoint; use 5-digit multiples of 150 up to 01500, e.g. \"00450 01500\"" >&2; exit 2; }
done
for seed in ${SEEDS:-0 1 2}; do
  d="$RUNS/small1500/ccp_persons/seed$seed/mi_views2_effnet4_frozen"
  SEED=$seed run "$d" misseg.train $(SEED=$seed data ccp_persons) $timm_budget $ckpts trainer.max_steps=1500 \
    report=false model.K=2 $frozen $views2
  for st in $steps; do
    SEED=$seed run "$d/diag/restarts/step$st/ccp_persons" misseg.evaluate ckpt_path="$d/checkpoints/step$st.ckpt" \
      $(SEED=$seed data ccp_persons) $eval_args probe=kmeans probe_kmeans_restarts=10
  done
done
