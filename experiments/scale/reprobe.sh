#!/usr/bin/env bash
# The linear probes of section 5 again with the converged probe (probe_schedule=cosine, the default since this
# script was written; every earlier probe number used a constant Adam lr of 1e-2, which does not converge at
# P = 2048 and leaves +-0.03 of optimiser noise at P = 256): MI and IIC at 450 steps on the five sets, seeds 0-2,
# their random-init reference (the same seeded draw as diag/random), paper_arch.sh's runs, and the 4,500-step
# persons1400 runs of section 2, section 7's lever runs. Written to
# RUN/diag/cosine/{step00450,random}/SET: nothing earlier is overwritten. Table: levers_table.py --probe-dir cosine.
# Usage: bash experiments/scale/reprobe.sh   (two evaluations at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
eval_args="$eval_args probe=linear probe_schedule=cosine"
probe() {  # probe SET SEED NAME: the trained run's probe and, once per seeded draw, its random init's
  local set=$1 seed=$2 d="$RUNS/small/$1/seed$2/$3"
  [ -f "$d/checkpoints/step00450.ckpt" ] || { echo "skip: $d"; return 0; }
  SEED=$seed run "$d/diag/cosine/step00450/$set" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
    $(SEED=$seed data "$set") $eval_args
  # IIC shares MI's encoder and its seeded init, so its random-init probe is MI's (section 2)
  [ "$3" != iic ] && [ -f "$d/diag/random/$set/metrics.json" ] || return 0
  local init
  init=$(init_seed "$d" "$set")
  [ "$init" = "$seed" ] || [ "$seed" = 0 ] || return 0  # seed 0's draw is already made for this set
  SEED=$init run "$d/diag/cosine/random/$set" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
    $(SEED=$init data "$set") $eval_args init=random
}
for seed in 0 1 2; do  # MI and its random init first, then the thesis architecture's runs, then IIC
  probe ccp_persons $seed mi & probe camvid $seed mi; wait
  probe coco_persons $seed mi & probe human_seg $seed mi; wait
  probe coco_stuff15 $seed mi
done
probe ccp_persons 0 mi_paperarch & probe ccp_persons 1 mi_paperarch; wait
probe ccp_persons 2 mi_paperarch
for seed in 0 1 2; do
  probe ccp_persons $seed iic & probe camvid $seed iic; wait
  probe coco_persons $seed iic & probe human_seg $seed iic; wait
  probe coco_stuff15 $seed iic
done
# the 4,500-step runs on the person union (section 2's probe rows and the README's Results claim), seed 0
for name in mi_paper iic; do
  d="$RUNS/compute/persons1400/$name"
  for set in ccp_persons human_seg coco_persons; do
    run "$d/diag/cosine/step04500/$set" misseg.evaluate ckpt_path="$d/checkpoints/step04500.ckpt" \
      $(data "$set") $eval_args &
    [ $name = iic ] || run "$d/diag/cosine/random/$set" misseg.evaluate ckpt_path="$d/checkpoints/step04500.ckpt" \
      $(data "$set") $eval_args init=random
    wait
  done
done
# section 7's lever (450 steps, five sets) and the 1,500-step ccp_persons runs (their random init: the 1,500-step
# mi run's, the same seed-0 draw of the same architecture)
for seed in 0 1 2; do
  probe ccp_persons $seed mi_corr & probe camvid $seed mi_corr; wait
  probe coco_persons $seed mi_corr & probe human_seg $seed mi_corr; wait
  probe coco_stuff15 $seed mi_corr
done
for seed in 0 1 2; do
  for name in mi mi_corr; do
    d="$RUNS/small1500/ccp_persons/seed$seed/$name"
    SEED=$seed run "$d/diag/cosine/step01500/ccp_persons" misseg.evaluate \
      ckpt_path="$d/checkpoints/step01500.ckpt" $(SEED=$seed data ccp_persons) $eval_args &
  done
  wait
done
d="$RUNS/small1500/ccp_persons/seed0/mi"
run "$d/diag/cosine/random/ccp_persons" misseg.evaluate ckpt_path="$d/checkpoints/step01500.ckpt" \
  $(data ccp_persons) $eval_args init=random
