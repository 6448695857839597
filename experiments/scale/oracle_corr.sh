#!/usr/bin/env bash
# Section 3's oracle test on the correspondence lever's objective: is the class partition a better optimum of
# eq. 4.12 + 1 x the correspondence term than the partition the network finds itself? (oracle.py --correspondence)
# Usage: bash experiments/scale/oracle_corr.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
out=$RUNS/oracle_corr
mkdir -p "$out"
oracle() {  # oracle SET K SEED
  local f="$out/$1_seed$3"
  [ -f "$f.json" ] || "$PY" experiments/scale/oracle.py "$SMALL/$1" "$2" 450 "$3" "$f.json" --correspondence 1 > "$f.log" 2>&1
  echo "done: $f"
}
for seed in 0 1 2; do
  oracle ccp_persons 2 $seed &
  oracle camvid 11 $seed
  wait
done
oracle coco_persons 2 0 &
oracle coco_persons 2 1
wait
oracle coco_persons 2 2
