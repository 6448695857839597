#!/usr/bin/env bash
# Section 13, compute: does the two-view lever's gain on ccp_persons (+0.046 at 450 steps, 3 of 3 seeds) hold at
# 3.3x the steps? mi_views2 at 1,500 steps, seeds 0-2, clusters only (NO_DIAG), against paper-faithful MI's
# 1,500-step runs of lever_correspondence_1500.sh (same budget, same folder layout).
# Usage: bash experiments/scale/lever_views_1500.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
train1500() {  # train1500 SEED: mi_views2 into RUNS/small1500/ccp_persons/seedSEED
  SEED=$1 run "$RUNS/small1500/ccp_persons/seed$1/mi_views2" misseg.train $(SEED=$1 data ccp_persons) $budget $ckpts \
    trainer.max_steps=1500 report=false model.K=2 $views2
}
train1500 0 &
train1500 1
wait
train1500 2
