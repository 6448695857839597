#!/usr/bin/env bash
# Score every kept checkpoint RUN/checkpoints/step*.ckpt of a training run on each named small set:
#   RUN/eval/step<N>/<set>/unsup     python -m misseg.evaluate (the method's own clusters, Hungarian, centre crop)
#   RUN/eval/step<N>/<set>/kmeans_L  python -m misseg.baselines.kmeans kmeans.features=ckpt (K-means on L)
# Skips what is done, and the sets in SKIP_SETS (default persons1400: 1,403 images, ~45 s per checkpoint on a
# loaded machine; its step-4500 score is the training run's own metrics.json).
# Usage: [SKIP_SETS="..."] bash experiments/scale/score.sh RUN_DIR SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
dir=$1; shift
for c in "$dir"/checkpoints/step*.ckpt; do
  [ -f "$c" ] || continue
  step=$(basename "$c" .ckpt)
  for set in "$@"; do
    [[ " ${SKIP_SETS-persons1400} " == *" $set "* ]] && continue
    e="$dir/eval/$step/$set"
    run "$e/unsup" misseg.evaluate ckpt_path="$c" $(data $set) trainer.accelerator=cpu trainer.enable_progress_bar=false report=false
    run "$e/kmeans_L" misseg.baselines.kmeans $(data $set) kmeans.features=ckpt kmeans.ckpt_path="$c" kmeans.device=cpu report=false
  done
done
