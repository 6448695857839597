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
train() { lever "$@" mi_deep model/encoder=thesis_deep; }  # train SET K SEED
for set_k in "ccp_persons 2" "camvid 11"; do
  train $set_k 0 &
  train $set_k 1
  wait
  train $set_k 2
done
