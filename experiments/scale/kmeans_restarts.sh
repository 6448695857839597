#!/usr/bin/env bash
# The K-means probe (K-means on L, fit on the probe's fit half, scored on its test half) again with 10 seedings
# and the lowest-inertia fit kept (probe_kmeans_restarts=10, label-free; the default since commit 31dadb7). Every
# earlier "K-means on L" number used one k-means++ seeding, which on learned L lands in different local optima:
# 0.348 to 0.616 mIoU on one MI run's L (section 11). For each NAME in seeds 0-2 on each SET: the trained run at
# step 450, its random init (the seeded draw of diag/random, once per distinct draw) and, where the run started
# from a weights file (model.encoder.weights set), those initial weights before training (init=initial).
# Written to RUN/diag/restarts/{step00450,random,initial}/SET: nothing earlier is overwritten. Table: python experiments/scale/kmeans_restarts_table.py.
# Usage: bash experiments/scale/kmeans_restarts.sh NAME SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
[ $# -ge 2 ] || { echo "usage: bash experiments/scale/kmeans_restarts.sh NAME SET [SET ...]" >&2; exit 2; }
name=$1; shift
eval_args="$eval_args probe=kmeans probe_kmeans_restarts=10"
restarts() {  # restarts SET SEED RUN: the trained step, the initial weights if any, the random init once per draw
  local set=$1 seed=$2 d=$3 c=$3/checkpoints/step00450.ckpt init
  SEED=$seed run "$d/diag/restarts/step00450/$set" misseg.evaluate ckpt_path="$c" $(SEED=$seed data "$set") $eval_args
  if grep -Eq '^ +weights: [^n ]' "$d/config_resolved.yaml"; then
    SEED=$seed run "$d/diag/restarts/initial/$set" misseg.evaluate ckpt_path="$c" $(SEED=$seed data "$set") \
      $eval_args init=initial
  fi
  [ -f "$d/diag/random/$set/metrics.json" ] || return 0
  init=$(init_seed "$d" "$set")
  [ "$init" = "$seed" ] || [ "$seed" = 0 ] || return 0  # seed 0's run evaluates the draw the others share
  SEED=$init run "$d/diag/restarts/random/$set" misseg.evaluate ckpt_path="$c" $(SEED=$init data "$set") \
    $eval_args init=random
}
each_checkpoint "$name" restarts "$@"
