#!/usr/bin/env bash
# One-at-a-time lever screen for the MI objective: the paper-faithful run of run.sh (same budget, common.sh)
# with one key changed per row. Each run lands in OUT/<dataset>/seed<SEED>/lever_<name>; summarize.py tabulates.
# Usage: [SEED=0] [DATASETS="coco_persons camvid"] [ONLY="tau1 region"] bash experiments/small_real/levers.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-logs/small_real}
source experiments/small_real/common.sh
DATASETS=${DATASETS:-coco_persons camvid coco_stuff15}
# name=overrides (commas stand for spaces)
LEVER_LIST="region=model.heads.region=true bottleneck8=model.heads.bottleneck=8 tau1=model.tau=1.0 \
sobel=model.sobel=true jitter0.8=data.augment.jitter=0.8,data.augment.hue=0.3 P64=model.P=64 d8=model.d=8 \
d2=model.d=2 tau0.25=model.tau=0.25 jitter0=data.augment.jitter=0,data.augment.hue=0 lr1e-4=model.lr=1e-4 \
iic_sobel=model=iic,model.sobel=true"  # the last row is IIC with Sobel input, for a fair look at the Sobel row
ONLY=${ONLY:-}
for lever in $LEVER_LIST; do  # lever-major, so a cut-short screen has every dataset for the first levers
  lname=${lever%%=*}
  [ -z "$ONLY" ] || [[ " $ONLY " == *" $lname "* ]] || continue
  overrides=${lever#*=}
  for spec in $SPECS; do
    IFS=: read -r name root K ignore <<< "$spec"
    [[ " $DATASETS " == *" $name "* ]] || continue
    d="$OUT/$name/seed$SEED"
    mkdir -p "$d"
    # shellcheck disable=SC2086  # word splitting of the override lists is intended
    run "lever_$lname" misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" \
        report=false ${overrides//,/ }
  done
done
$PY experiments/small_real/summarize.py "$OUT"
