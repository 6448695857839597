#!/usr/bin/env bash
# The "+ CRF" rows that sections 5 and 7 of README.md left out (issue 14 part 2 asks for every run with and
# without the CRF): `misseg.evaluate crf=true` on the final checkpoint of MI, IIC and the correspondence lever on
# Human-Seg and COCO-Stuff-15 (seeds 0-2), the random-partner lever on ccp_persons and CamVid, ccp_persons seeds
# 3-4, and the 1,500-step ccp_persons runs; then the random-init reference's clusters + CRF (`init=random crf=true`
# on each set's `mi` checkpoint, seeds 0-2, with the init seed of that run's diag/random row: the architecture
# at its seeded initial weights, refined and scored like a trained run). Evaluation only; a run without its
# checkpoint is skipped.
# Usage: bash experiments/scale/crf_rest.sh   (two evaluations at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
crf() {  # crf STUDY SET SEED STEP NAME...: the CRF row of each named run
  local study=$1 set=$2 seed=$3 step=$4 name
  for name in "${@:5}"; do
    local d="$RUNS/$study/$set/seed$seed/$name"
    [ -f "$d/checkpoints/step$step.ckpt" ] || { echo "skip: $d (no step$step.ckpt)"; continue; }
    SEED=$seed run "$d/diag/step${step}_crf/$set" misseg.evaluate ckpt_path="$d/checkpoints/step$step.ckpt" \
      $(SEED=$seed data "$set") $eval_args crf=true
  done
}
for seed in 0 1 2; do
  crf small human_seg $seed 00450 mi iic mi_corr &
  crf small coco_stuff15 $seed 00450 mi iic mi_corr
  wait
  crf small ccp_persons $seed 00450 mi_corr_random &
  crf small camvid $seed 00450 mi_corr_random
  wait
done
crf small ccp_persons 3 00450 mi mi_corr &
crf small ccp_persons 4 00450 mi mi_corr
wait
crf small1500 ccp_persons 0 01500 mi mi_corr &
crf small1500 ccp_persons 1 01500 mi mi_corr
wait
crf small1500 ccp_persons 2 01500 mi mi_corr
for seed in 0 1 2; do
  for set in ccp_persons camvid coco_persons human_seg coco_stuff15; do
    d="$RUNS/small/$set/seed$seed/mi"
    [ -f "$d/diag/random/$set/metrics.json" ] && [ -f "$d/checkpoints/step00450.ckpt" ] || { echo "skip: $d"; continue; }
    # the init of the random-init row it refines: diagnose.sh drew seed 0 for every run (more_seeds.sh: per seed)
    init=$(init_seed "$d" "$set")
    SEED=$init run "$d/diag/random_crf/$set" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
      $(SEED=$init data "$set") $eval_args init=random crf=true
  done
done
# paper_arch.sh's runs (the thesis's P = 2048, width 64 at the CPU budget)
crf small ccp_persons 0 00450 mi_paperarch &
crf small ccp_persons 1 00450 mi_paperarch
wait
crf small ccp_persons 2 00450 mi_paperarch
