#!/usr/bin/env bash
# The diagnostics of issue 14 on the scale study's checkpoints: for each trained run and kept step, on each set,
# `misseg.evaluate probe=all` (linear probe on L, K-means on L, the method's clusters on the probe's test half) and
# once per run and set the random-init reference (`init=random`: same architecture, seeded fresh weights; linked
# from another seed's run of the same config when it holds the same draw).
# Data, runner and threads from common.sh. Checkpoints written before the model was composed from config groups
# load through misseg.lit.build's translation of the flat keys.
# EVAL_ARGS: more evaluate overrides, e.g. matching=majority for runs with more clusters than classes.
# Usage: [STEPS="01500 04500"] [EVAL_ARGS=...] bash experiments/scale/diagnose.sh RUN_DIR SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
dir=$1; shift

# reuse_random_init RUN SET: the random init depends only on the model config and the evaluation's seed, so when
# the same run name under another seed (RUNS/.../seedS/NAME) has the same `model` block and its random init was
# drawn with this SEED, link its diag/random/SET instead of evaluating the same weights again (up to 11 minutes a
# run on the EfficientNet encoders). The link is printed; `run` then finds its metrics.json and skips.
reuse_random_init() {
  local here="$1/diag/random/$2" twin
  [ -e "$here" ] && return 0
  for twin in "$(dirname "$(dirname "$1")")"/seed*/"$(basename "$1")"; do
    [ "$twin" -ef "$1" ] && continue
    [ -f "$twin/diag/random/$2/metrics.json" ] || continue
    [ "$(init_seed "$twin" "$2")" = "$SEED" ] || continue
    "$PY" - "$1/config_resolved.yaml" "$twin/config_resolved.yaml" <<'PY' || continue
import sys
from omegaconf import OmegaConf
a, b = (OmegaConf.to_container(OmegaConf.load(f).model) for f in sys.argv[1:])
sys.exit(a != b)
PY
    mkdir -p "$1/diag/random"
    ln -s "$(realpath "$twin/diag/random/$2")" "$here"
    echo "reused: $here -> $twin/diag/random/$2 (same model config, random init seed $SEED)"
    return 0
  done
}
eval_args="$eval_args ${EVAL_ARGS:-}"
for set in "$@"; do
  first=""
  for step in ${STEPS:-01500 04500}; do
    c="$dir/checkpoints/step$step.ckpt"
    [ -f "$c" ] || continue
    first=${first:-$c}
    run "$dir/diag/step$step/$set" misseg.evaluate ckpt_path="$c" $(data "$set") $eval_args probe=all
  done
  [ -n "$first" ] || continue
  reuse_random_init "$dir" "$set"
  run "$dir/diag/random/$set" misseg.evaluate ckpt_path="$first" $(data "$set") $eval_args probe=all init=random
done
