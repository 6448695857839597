#!/usr/bin/env bash
# Steps 3-5 of issue 14 part 3, one training process at a time, each followed by the scoring of its kept
# checkpoints (score.sh). Runs that have a metrics.json are skipped, so the script can be re-started.
#   compute:   MI and IIC, 4,500 steps on persons1400, checkpoints kept at 150 / 450 / 1500 / 4500
#   datascale: MI and IIC, 1,500 steps on coco_persons (109) and persons400 (399); persons1400 (1,403) at 1,500
#              steps is the step-1500 checkpoint of the compute runs (constant lr, so the same weights)
#   sobel:     MI with model.sobel=true, 4,500 steps on persons1400
# Usage: bash experiments/scale/train.sh [compute] [datascale] [sobel]   (default: all three, in this order)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
EVAL_SETS="coco_persons human_seg ccp_persons"

# train_and_score DIR STEPS KEEP TRAINSET SCORE_SETS ARGS...: train, prune the checkpoints not in KEEP, score
train_and_score() {
  local dir=$1 steps=$2 keep=$3 set=$4 sets=$5
  run "$dir" misseg.train $(data $set) $budget $ckpts trainer.max_steps=$steps report=false "${@:6}"
  [ -f "$dir/metrics.json" ] || return 0
  for c in "$dir"/checkpoints/step*.ckpt; do
    local s=$(basename "$c" .ckpt); s=$((10#${s#step}))
    [[ " $keep " == *" $s "* ]] || rm -f "$c"
  done
  bash experiments/scale/score.sh "$dir" $sets
}

for part in ${@:-compute datascale sobel}; do
  case $part in
    compute)
      for m in mi_paper iic; do
        args=(); [ $m = iic ] && args=(model=iic)
        train_and_score "$RUNS/compute/persons1400/$m" 4500 "150 450 1500 4500" persons1400 "$EVAL_SETS" "${args[@]}"
      done ;;
    datascale)
      for set in coco_persons persons400; do
        for m in mi_paper iic; do
          args=(); [ $m = iic ] && args=(model=iic)
          sets="coco_persons"; [ $set = persons400 ] && sets="coco_persons human_seg persons400"
          train_and_score "$RUNS/datascale/$set/$m" 1500 "150 450 1500" $set "$sets" "${args[@]}"
        done
      done ;;
    sobel)
      train_and_score "$RUNS/compute/persons1400/mi_sobel" 4500 "150 450 1500 4500" persons1400 "$EVAL_SETS" model.sobel=true ;;
    *) echo "unknown part $part: use compute, datascale or sobel" >&2; exit 2 ;;
  esac
done
