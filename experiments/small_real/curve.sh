#!/usr/bin/env bash
# mIoU vs training time: the paper-faithful MI objective and IIC at several step budgets (common.sh settings
# otherwise), into OUT/steps<N>/<dataset>/seed<SEED>/{mi_paper,iic}; plot_curve.py draws figures/curve.png.
# Usage: [STEPS_LIST="50 150 450"] [DATASETS="coco_persons camvid"] bash experiments/small_real/curve.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-logs/small_real_curve}
for STEPS in ${STEPS_LIST:-50 150 450}; do
  OUT="$ROOT/steps$STEPS"
  source experiments/small_real/common.sh
  for spec in $SPECS; do
    IFS=: read -r name root K ignore <<< "$spec"
    [[ " ${DATASETS:-coco_persons camvid} " == *" $name "* ]] || continue
    d="$OUT/$name/seed$SEED"
    mkdir -p "$d"
    run mi_paper misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" report=false
    run iic misseg.train $data $budget model=iic data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" report=false
  done
done
$PY experiments/small_real/plot_curve.py "$ROOT" ${TABLE:-}  # TABLE: run.sh output, for the baseline lines
