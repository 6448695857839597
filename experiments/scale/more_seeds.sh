#!/usr/bin/env bash
# 3 seeds for the two sets whose diagnosis rows had seed 0 only: the COCO-Stuff-15 view (diagnose_small.sh with
# SEED=1, 2; MI with model.ignore_in_loss=true) and human_seg (MI and IIC, seeds 0-2, lever_positions.sh's budget).
# Each run is diagnosed (linear probe, K-means on L, random init). No CRF rows (time).
# Usage: bash experiments/scale/more_seeds.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
SEED=1 bash experiments/scale/diagnose_small.sh &
SEED=2 bash experiments/scale/diagnose_small.sh
wait
for seed in 0 1 2; do
  train450 human_seg 2 $seed mi model=mi &
  train450 human_seg 2 $seed iic model=iic
  wait
done
