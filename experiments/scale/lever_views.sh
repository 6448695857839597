#!/usr/bin/env bash
# A lever the diagnosis points at, on CamVid (K = 11) at diagnose_small.sh's budget (450 steps), seeds 0-2:
# MI paper-faithful vs MI with two views (model.objective.views=2, strong colour jitter + flip on the second view).
# Mechanism: the probe finds classes in L that the clusters do not use; the clusters follow the dominant (colour)
# variation. With positives from a colour-jittered view, colour no longer tells positives from negatives, so the
# clusters must follow something else. Judged by clusters mIoU and by the gap between clusters and linear probe.
# Usage: bash experiments/scale/lever_views.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
train() { train450 camvid 11 "$@"; }  # train SEED NAME ARGS...
for seed in 0 1 2; do
  train $seed mi &
  train $seed mi_views2 $views2
  wait
done
