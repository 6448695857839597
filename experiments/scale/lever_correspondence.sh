#!/usr/bin/env bash
# A lever from the diagnosis (README "Why the clusters miss the classes"): eq. 4.12 is met by any balanced partition
# the network computes confidently, so nothing asks cluster k to mean the same thing in every image.
# model.objective.correspondence_weight=1 adds positives between each patch and its nearest patch in the closest
# other image of the batch, read from a frozen copy of the encoder at its initial weights (STEGO's correspondences,
# with a random-init backbone: correspondence.py measures that they join same-class patches 0.67 vs 0.52 by chance
# on ccp_persons, 0.70 vs 0.24 on CamVid, 0.63 vs 0.62 on COCO-Persons). Paper-faithful objective otherwise;
# lever_positions.sh's budget and seeds; then Human-Seg and COCO-Stuff-15 (things ignored in the loss, as
# diagnose_small.sh), and the CRF rows.
# Usage: bash experiments/scale/lever_correspondence.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
train() { lever "$1" "$2" "$3" mi_corr model.objective.correspondence_weight=1 "${@:4}"; }  # train SET K SEED [ARGS]
crf() {  # crf SET SEED: the CRF row of the lever's run
  local d="$RUNS/small/$1/seed$2/mi_corr"
  SEED=$2 run "$d/diag/step00450_crf/$1" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
    $(SEED=$2 data "$1") $eval_args crf=true
}
for seed in 0 1 2; do
  train ccp_persons 2 $seed &
  train camvid 11 $seed
  wait
done
train coco_persons 2 0 &
train coco_persons 2 1
wait
train coco_persons 2 2
for seed in 0 1 2; do
  train human_seg 2 $seed &
  train coco_stuff15 15 $seed model.ignore_in_loss=true
  wait
done
for set in ccp_persons camvid coco_persons; do
  crf $set 0 &
  crf $set 1
  wait
  crf $set 2
done
# two more seeds on ccp_persons, where the mean gain is (paper-faithful MI beside it, as lever_positions.sh runs it)
for seed in 3 4; do
  train ccp_persons 2 $seed &
  lever ccp_persons 2 $seed mi
  wait
done
