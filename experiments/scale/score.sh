#!/usr/bin/env bash
# Score every kept checkpoint RUN/checkpoints/step*.ckpt of a training run on each named small set:
#   RUN/eval/step<N>/<set>/unsup     python -m misseg.evaluate (the method's own clusters, Hungarian, centre crop)
#   RUN/eval/step<N>/<set>/kmeans_L  python -m misseg.baselines.kmeans kmeans.features=ckpt (K-means on L)
# Skips what is done. Usage: bash experiments/scale/score.sh RUN_DIR SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
dir=$1; shift
for c in "$dir"/checkpoints/step*.ckpt; do
  [ -f "$c" ] || continue
  step=$(basename "$c" .ckpt)
  for set in "$@"; do
    e="$dir/eval/$step/$set"
    run "$e/unsup" misseg.evaluate ckpt_path="$c" $(data $set) trainer.accelerator=cpu trainer.enable_progress_bar=false report=false
    run "$e/kmeans_L" misseg.baselines.kmeans $(data $set) kmeans.features=ckpt kmeans.ckpt_path="$c" kmeans.device=cpu report=false
  done
done
