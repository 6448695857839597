#!/usr/bin/env bash
# The converged linear probe (reprobe.sh's protocol: probe=linear probe_schedule=cosine) on a lever's runs that were
# trained with NO_DIAG: for each NAME in seeds 0-2 on each SET, the step-450 checkpoint, written to
# RUN/diag/cosine/step00450/SET (nothing earlier is overwritten). The random-init reference is the base run's
# (reprobe.sh: the same seeded draw for the same architecture). Table: levers_table.py --probe-dir cosine.
# Usage: bash experiments/scale/probe_levers.sh NAME SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
[ $# -ge 2 ] || { echo "usage: bash experiments/scale/probe_levers.sh NAME SET [SET ...]" >&2; exit 2; }
name=$1; shift
eval_args="$eval_args probe=linear probe_schedule=cosine"
linear() {  # linear SET SEED RUN
  SEED=$2 run "$3/diag/cosine/step00450/$1" misseg.evaluate ckpt_path="$3/checkpoints/step00450.ckpt" \
    $(SEED=$2 data "$1") $eval_args
}
each_checkpoint "$name" linear "$@"
