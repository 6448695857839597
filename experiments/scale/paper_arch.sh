#!/usr/bin/env bash
# The thesis's architecture at the CPU budget: is the small study's failure an artefact of its reduced network?
# Every run of sections 4-7 used P = 256 and encoder width 32 to fit two CPU cores; the thesis uses P = 2048 and
# width 64 (the defaults of conf/model). This trains paper-faithful MI with those two keys restored and nothing
# else changed (lever_positions.sh's 450 steps, 64 px, batch 16, Adam 1e-3, seeds 0-2) on ccp_persons, diagnoses
# it (probes, K-means on L, random init of the same architecture), then runs section 3's oracle test at that
# architecture (oracle.py --model P=2048 encoder.width=64): does the objective prefer the classes there?
# Usage: bash experiments/scale/paper_arch.sh   (two runs at a time, one thread each; ~1 h on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
arch="model.P=2048 model.encoder.width=64"
train() { lever ccp_persons 2 "$1" mi_paperarch $arch; }  # train SEED
oracle() {  # oracle SEED
  local out="$RUNS/oracle_paperarch/ccp_persons_seed$1.json"
  [ -f "$out" ] && return 0
  mkdir -p "$(dirname "$out")"
  "$PY" experiments/scale/oracle.py "$SMALL/ccp_persons" 2 450 "$1" "$out" --model P=2048 encoder.width=64 \
    > "${out%.json}.log" 2>&1 || echo "FAILED: $out (see ${out%.json}.log)"
}
train 0 &
train 1
wait
train 2 &
oracle 0
wait
oracle 1 &
oracle 2
wait
