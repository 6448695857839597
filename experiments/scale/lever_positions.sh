#!/usr/bin/env bash
# A lever from the diagnosis (README "Why the clusters miss the classes"): negatives at shuffled positions
# (model.objective.negative_positions=shuffled) vs the thesis's same-position negatives, seeds 0-2, 450 steps
# at diagnose_small.sh's budget, on ccp_persons (K = 2, one centred person), coco_persons (K = 2) and CamVid
# (K = 11). Mechanism: with same-position negatives a class that sits at the same place in most images gives
# S_ij(x) = S_ij(x'), so the bound penalises the consistent labelling; shuffled positions remove that penalty.
# Each run is then diagnosed (linear probe, K-means on L, random init) and its clusters described (agreement.py).
# Usage: bash experiments/scale/lever_positions.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
for set_k in "ccp_persons 2" "camvid 11" "coco_persons 2"; do
  for seed in 0 1 2; do
    lever $set_k $seed mi &
    lever $set_k $seed mi_shuffled model.objective.negative_positions=shuffled
    wait
  done
done
