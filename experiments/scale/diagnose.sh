#!/usr/bin/env bash
# The diagnostics of issue 14 on the scale study's checkpoints: for each trained run and kept step, on each person
# set, `misseg.evaluate probe=all` (linear probe on L, K-means on L, the method's clusters on the probe's test half)
# and once per run and set the random-init reference (`init=random`: same architecture, seeded fresh weights).
# One process at a time, one thread. Skips what is done. Checkpoints written before the model was composed from
# config groups load through misseg.lit.build's translation of the flat keys.
# Usage: [STEPS="01500 04500"] bash experiments/scale/diagnose.sh RUN_DIR SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SMALL=${SMALL:-/work/data_small}
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
dir=$1; shift
data() { echo "data=folder data.root=$SMALL/$1 data.resize_shorter=null data.image_size=64 data.eval_batch_size=64 data.num_workers=1"; }
run() {  # run OUT ARGS...: one evaluate into OUT unless OUT/metrics.json exists
  local out=$1; shift
  [ -f "$out/metrics.json" ] && return 0
  mkdir -p "$(dirname "$out")"
  "$PY" -m misseg.evaluate "$@" trainer.accelerator=cpu trainer.enable_progress_bar=false report=false \
    hydra.run.dir="$out" > "$out.log" 2>&1 || echo "FAILED: $out (see $out.log)"
}
for set in "$@"; do
  first=""
  for step in ${STEPS:-01500 04500}; do
    c="$dir/checkpoints/step$step.ckpt"
    [ -f "$c" ] || continue
    first=${first:-$c}
    run "$dir/diag/step$step/$set" ckpt_path="$c" $(data "$set") probe=all
  done
  [ -n "$first" ] && run "$dir/diag/random/$set" ckpt_path="$first" $(data "$set") probe=all init=random
done
