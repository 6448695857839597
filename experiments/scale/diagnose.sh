#!/usr/bin/env bash
# The diagnostics of issue 14 on the scale study's checkpoints: for each trained run and kept step, on each set,
# `misseg.evaluate probe=all` (linear probe on L, K-means on L, the method's clusters on the probe's test half) and
# once per run and set the random-init reference (`init=random`: same architecture, seeded fresh weights).
# Data, runner and threads from common.sh. Checkpoints written before the model was composed from config groups
# load through misseg.lit.build's translation of the flat keys.
# Usage: [STEPS="01500 04500"] bash experiments/scale/diagnose.sh RUN_DIR SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
dir=$1; shift
eval_args="trainer.accelerator=cpu trainer.enable_progress_bar=false report=false"
for set in "$@"; do
  first=""
  for step in ${STEPS:-01500 04500}; do
    c="$dir/checkpoints/step$step.ckpt"
    [ -f "$c" ] || continue
    first=${first:-$c}
    run "$dir/diag/step$step/$set" misseg.evaluate ckpt_path="$c" $(data "$set") $eval_args probe=all
  done
  [ -n "$first" ] && run "$dir/diag/random/$set" misseg.evaluate ckpt_path="$first" $(data "$set") $eval_args \
    probe=all init=random
done
