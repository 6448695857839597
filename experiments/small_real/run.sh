#!/usr/bin/env bash
# Regenerates experiments/small_real/README.md's CPU table: ours (paper-faithful and two-view lever) vs IIC vs
# K-means (RGB) vs the trivial one-cluster baseline on the four small real sets of ../shared/data, at the
# equal budget of common.sh. Usage: [SEED=0] [STEPS=150] [LEVERS=0] bash experiments/small_real/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-logs/small_real}
LEVERS=${LEVERS:-1}   # 0: skip the two-view lever row (halves the CPU time of the table)
source experiments/small_real/common.sh
for spec in $SPECS; do
  IFS=: read -r name root K ignore <<< "$spec"
  d="$OUT/$name/seed$SEED"
  mkdir -p "$d"
  run trivial misseg.baselines.kmeans $data data.root="$root" kmeans.K=1 matching=majority report=false
  run kmeans misseg.baselines.kmeans $data data.root="$root" kmeans.K="$K"
  run mi_paper misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore"
  [ "$LEVERS" = 0 ] || run mi_views2 misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" \
      model.objective.views=2 model.objective.view_jitter=0.8 model.objective.view_hue=0.5 report=false
  run iic misseg.train $data $budget model=iic data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" report=false
done
$PY experiments/small_real/summarize.py "$OUT"
