#!/usr/bin/env bash
# Regenerates experiments/small_real/README.md's CPU table: ours (paper-faithful and two-view lever) vs IIC vs
# K-means (RGB) vs the trivial one-cluster baseline on the four small real sets of ../shared/data.
# Same budget for ours and IIC: STEPS optimizer steps of batch 16 at 64 x 64 (shorter side resized to 80),
# P = 256, encoder width 32, Adam lr 1e-3, seed SEED. Usage: bash experiments/small_real/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-logs/small_real}
SHARED=${SHARED:-../shared/data}
STEPS=${STEPS:-150}
LEVERS=${LEVERS:-1}   # 0: skip the two-view lever row (halves the CPU time of the table)
SEED=${SEED:-0}
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled}
mkdir -p "$OUT"
# the stuff-15 view of coco_stuff27 (things -> ignore, stuff 12..26 -> 0..14), made once
[ -d "$OUT/coco_stuff15/images" ] || $PY -m misseg.data.prepare stuff15-from-27 --src "$SHARED/coco_stuff27" --out "$OUT/coco_stuff15"

data="experiment=folder data.resize_shorter=80 data.image_size=64 data.batch_size=16 data.num_workers=1 seed=$SEED"
budget="trainer.accelerator=cpu trainer.max_steps=$STEPS trainer.max_epochs=100000 trainer.check_val_every_n_epoch=100000"
budget="$budget trainer.enable_progress_bar=false model.P=256 model.encoder_width=32 model.lr=1e-3"
for spec in "coco_persons:$SHARED/coco_persons:2:false" "human_seg:$SHARED/human_seg:2:false" \
            "camvid:$SHARED/camvid:11:false" "coco_stuff15:$OUT/coco_stuff15:15:true"; do
  IFS=: read -r name root K ignore <<< "$spec"
  d="$OUT/$name/seed$SEED"
  run() { [ -f "$d/$1/metrics.json" ] || "$PY" -m "${@:2}" hydra.run.dir="$d/$1" > "$d/$1.log" 2>&1 || echo "FAILED: $name $1 (see $d/$1.log)"; }
  mkdir -p "$d"
  run trivial misseg.baselines.kmeans $data data.root="$root" kmeans.K=1 matching=majority report=false
  run kmeans misseg.baselines.kmeans $data data.root="$root" kmeans.K="$K"
  run mi_paper misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore"
  [ "$LEVERS" = 0 ] || run mi_views2 misseg.train $data $budget data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" \
      model.views=2 model.view_jitter=0.8 model.view_hue=0.5 report=false
  run iic misseg.train $data $budget model=iic data.root="$root" model.K="$K" model.ignore_in_loss="$ignore" report=false
done
$PY experiments/small_real/summarize.py "$OUT"
