#!/usr/bin/env bash
# Diagnosis on the multi-class small sets (CamVid, COCO-Stuff-15 view): MI (paper-faithful) and IIC trained for
# STEPS steps at the small_real budget (64 px crops of images with shorter side 80, batch 16, P = 256, encoder
# width 32, Adam 1e-3, seed SEED), checkpoints kept at CKPT_STEPS; then experiments/scale/diagnose.sh on each
# (linear probe, K-means on L, the random-init reference). One process at a time, one thread.
# Usage: [STEPS=450] [SEED=0] bash experiments/scale/diagnose_small.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/work/exp_runs/scale/small}
SMALL=${SMALL:-/work/data_small}
STEPS=${STEPS:-450}
SEED=${SEED:-0}
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
budget="trainer.accelerator=cpu trainer.max_steps=$STEPS trainer.max_epochs=100000 trainer.check_val_every_n_epoch=100000"
budget="$budget trainer.enable_progress_bar=false model.P=256 model.encoder.width=32 model.lr=1e-3 report=false"
budget="$budget callbacks=steps"
for spec in camvid:11:false coco_stuff15:15:true; do
  IFS=: read -r set K ignore <<< "$spec"
  data="data=folder data.root=$SMALL/$set data.resize_shorter=null data.image_size=64 data.batch_size=16"
  data="$data data.num_workers=1 seed=$SEED"
  for method in mi iic; do
    d="$OUT/$set/seed$SEED/$method"
    if [ ! -f "$d/metrics.json" ]; then
      mkdir -p "$(dirname "$d")"
      "$PY" -m misseg.train model=$method $data $budget model.K=$K model.ignore_in_loss=$ignore \
        hydra.run.dir="$d" > "$d.log" 2>&1 || { echo "FAILED: $d (see $d.log)"; continue; }
    fi
    STEPS="$(printf '%05d' "$STEPS")" bash experiments/scale/diagnose.sh "$d" "$set"
  done
done
