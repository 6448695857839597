#!/usr/bin/env bash
# A lever the diagnosis points at, on CamVid (K = 11) at diagnose_small.sh's budget (450 steps), seeds 0-2:
# MI paper-faithful vs MI with two views (model.objective.views=2, strong colour jitter + flip on the second view).
# Mechanism: the probe finds classes in L that the clusters do not use; the clusters follow the dominant (colour)
# variation. With positives from a colour-jittered view, colour no longer tells positives from negatives, so the
# clusters must follow something else. Judged by clusters mIoU and by the gap between clusters and linear probe.
# Usage: bash experiments/scale/lever_views.sh [OUT_DIR]   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/work/exp_runs/scale/small}
SMALL=${SMALL:-/work/data_small}
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
budget="trainer.accelerator=cpu trainer.max_steps=450 trainer.max_epochs=100000 trainer.check_val_every_n_epoch=100000"
budget="$budget trainer.enable_progress_bar=false model.P=256 model.encoder.width=32 model.lr=1e-3 report=false"
budget="$budget callbacks=steps model.K=11"
train() {  # train SEED NAME ARGS...
  local d="$OUT/camvid/seed$1/$2"
  data="data=folder data.root=$SMALL/camvid data.resize_shorter=null data.image_size=64 data.batch_size=16"
  [ -f "$d/metrics.json" ] || { mkdir -p "$(dirname "$d")"; "$PY" -m misseg.train $data data.num_workers=1 seed=$1 \
    $budget "${@:3}" hydra.run.dir="$d" > "$d.log" 2>&1 || echo "FAILED: $d"; }
  STEPS=00450 bash experiments/scale/diagnose.sh "$d" camvid
}
for seed in 0 1 2; do
  train $seed mi &
  train $seed mi_views2 model.objective.views=2 model.objective.view_jitter=0.8 model.objective.view_hue=0.5
  wait
done
