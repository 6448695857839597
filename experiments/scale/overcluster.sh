#!/usr/bin/env bash
# Section 11: one cluster more than classes (K = 3 on ccp_persons' 2 classes, scored with majority matching,
# IIC's over-clustering protocol) for the thesis's objective, on the scratch C and on the frozen ImageNet network
# read at 4x. Why: on that network's L the person is the *second* principal direction (its sign split scores 0.698
# mIoU) after an upper/lower split, and K-means with K = 3 isolates it (0.689) where K = 2 cuts the other way.
# Same budget and seeds as sections 4-10 (64 px, P = 256, batch 16, Adam 1e-3, 450 steps, seeds 0-2). Baselines
# under the same protocol: K-means RGB with K = 3 (majority); the trivial one-cluster map is K = 1 (baselines.sh).
# Every evaluation gets matching=majority (diagnose.sh's EVAL_ARGS); the probes' K-means on L uses K = 3 too.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/overcluster.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
export EVAL_ARGS="matching=majority"
eval_args="$eval_args $EVAL_ARGS"
run "$RUNS/baselines/ccp_persons/kmeans_k3" misseg.baselines.kmeans $(data ccp_persons) kmeans.K=3 matching=majority \
  report=false
for seed in 0 1 2; do
  lever ccp_persons 3 "$seed" mi_k3 model.matching=majority &
  budget=$timm_budget lever ccp_persons 3 "$seed" mi_effnet4_frozen_k3 model.matching=majority $frozen
  wait
done
d="$RUNS/small/ccp_persons/seed0/mi_effnet4_frozen_k3"  # the frozen network before training, K = 3
run "$d/diag/initial/ccp_persons" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" $(data ccp_persons) \
  $eval_args probe=all init=initial
