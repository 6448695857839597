# Shared by run.sh and levers.sh: the datasets, the equal budget and the skip-if-done runner.
# Budget: STEPS optimizer steps of batch 16 at 64 x 64 (shorter side resized to 80), P = 256, encoder width 32,
# Adam lr 1e-3, seed SEED, 2 CPU cores; ours and IIC get the same steps.
SHARED=${SHARED:-../shared/data}
STEPS=${STEPS:-150}
SEED=${SEED:-0}
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled}
mkdir -p "$OUT"
# the stuff-15 view of coco_stuff27 (things -> ignore, stuff 12..26 -> 0..14), made once
[ -d "$OUT/coco_stuff15/images" ] || $PY -m misseg.data.prepare stuff15-from-27 --src "$SHARED/coco_stuff27" --out "$OUT/coco_stuff15"

data="experiment=folder data.resize_shorter=80 data.image_size=64 data.batch_size=16 data.num_workers=1 seed=$SEED"
budget="trainer.accelerator=cpu trainer.max_steps=$STEPS trainer.max_epochs=100000 trainer.check_val_every_n_epoch=100000"
budget="$budget trainer.enable_progress_bar=false model.P=256 model.encoder.width=32 model.lr=1e-3"
# name:root:K:ignore_in_loss
SPECS="coco_persons:$SHARED/coco_persons:2:false human_seg:$SHARED/human_seg:2:false \
camvid:$SHARED/camvid:11:false coco_stuff15:$OUT/coco_stuff15:15:true"

# run NAME MODULE ARGS...: one run into $d/NAME unless its metrics.json exists; a failure is reported, not fatal
run() { [ -f "$d/$1/metrics.json" ] || "$PY" -m "${@:2}" hydra.run.dir="$d/$1" > "$d/$1.log" 2>&1 || echo "FAILED: $name $1 (see $d/$1.log)"; }
