#!/usr/bin/env bash
# The references for lever_positions.sh at the same budget and seeds: IIC (model=iic) trained and diagnosed like
# MI, then every run of the lever study (mi, mi_shuffled, iic) scored again with the dense CRF
# (`misseg.evaluate crf=true`: the method's clusters, CRF-refined; a separate row from the plain scores).
# Usage: bash experiments/scale/reference.sh   (after lever_positions.sh; two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
iic() { train450 "$@" iic model=iic; }  # iic SET K SEED
crf() {  # crf SET SEED: the CRF row of every run of that seed
  for name in mi mi_shuffled iic; do
    local d="$RUNS/small/$1/seed$2/$name"
    [ -f "$d/checkpoints/step00450.ckpt" ] || continue
    SEED=$2 run "$d/diag/step00450_crf/$1" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
      $(SEED=$2 data "$1") $eval_args crf=true
  done
}
for set_k in "ccp_persons 2" "camvid 11" "coco_persons 2"; do
  iic $set_k 0 &
  iic $set_k 1
  wait
  iic $set_k 2 &
  crf ${set_k% *} 0
  wait
  crf ${set_k% *} 1 &
  crf ${set_k% *} 2
  wait
done
