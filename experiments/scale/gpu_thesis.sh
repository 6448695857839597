#!/usr/bin/env bash
# The thesis's regime on one lent GPU (issue 14 part 3), in one call of about 8 minutes: the paper setting (128 px
# crops, batch 64, P = 2048, Adam 1e-4) trained on the 1,403-image person union for TRAIN_S seconds each, three
# runs side by side on the one card: MI paper-faithful, MI + the correspondence lever, IIC. Meanwhile the oracle
# test (oracle.py --setting paper: is the class partition a better optimum of eq. 4.12 than the learned one?).
# Then every run is scored on each set's own images (unsupervised, linear probe, K-means on L; MI's random init),
# beside K-means RGB and the trivial one-cluster baseline at the same 128 px. Writes OUT/summary.md and brings
# back metrics.json, the CSV curves and the logs; no checkpoints (too large to bring back).
#
# Prepare on the CPU machine (data ~40 MB, ignored by git through .git/info/exclude):
#   python experiments/scale/make_data.py --shared ../shared/data --out .gpu/data --side 128 --jpeg 90 \
#     --sets coco_persons,human_seg,ccp_persons && rm -rf .gpu/data/persons400
#   pip download --no-deps -d .gpu/wheels hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
# Run (device tool): command "OUT=$OUT bash experiments/scale/gpu_thesis.sh", carry [".gpu"], timeout_s 590.
# CPU smoke test of the same script (tiny: seconds per run, one small set):
#   ACC=cpu TRAIN_SET=coco_persons EVAL_SETS=coco_persons TRAIN_S=20 ORACLE_S=10 OUT=/tmp/gpu_smoke \
#     bash experiments/scale/gpu_thesis.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_thesis}
DATA=${DATA:-.gpu/data}
TRAIN_SET=${TRAIN_SET:-persons1400}
EVAL_SETS=${EVAL_SETS:-coco_persons human_seg ccp_persons}
TRAIN_S=${TRAIN_S:-240}
ORACLE_S=${ORACLE_S:-100}
ACC=${ACC:-gpu}
export WANDB_MODE=disabled PYTHONPATH=$PWD
mkdir -p "$OUT"
t0=$(date +%s)
python -c "import hydra" 2>/dev/null || python -m pip install -q --no-deps .gpu/wheels/* 2>&1 | tail -1
command -v python > /dev/null || { echo "gpu_thesis.sh: no python on PATH"; exit 2; }
missing=$(python -c "
import importlib
for m in ('hydra', 'torch', 'pytorch_lightning', 'kornia', 'torchmetrics', 'scipy', 'misseg'):
    try:
        importlib.import_module(m)
    except ImportError as e:
        print(m, '(' + str(e) + ')'); break
")
[ -z "$missing" ] || { echo "gpu_thesis.sh: cannot import $missing: put its wheel in .gpu/wheels"; exit 2; }
{
  echo "commit: $(git rev-parse HEAD 2>/dev/null || cat .gpu/commit 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "device: $ACC"
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} > "$OUT/device.txt"
cat "$OUT/device.txt"

max_time=$(printf '00:00:%02d:%02d' $((TRAIN_S / 60)) $((TRAIN_S % 60)))
data() { echo "experiment=folder data.root=$DATA/$1 data.resize_shorter=null data.image_size=128 data.batch_size=64 data.num_workers=4"; }
paper="trainer.accelerator=$ACC trainer.max_epochs=100000 +trainer.max_time=$max_time"
paper="$paper trainer.check_val_every_n_epoch=100000 trainer.enable_progress_bar=false report=false model.K=2"
train() {  # train NAME ARGS...: one run into OUT/NAME
  python -m misseg.train $(data "$TRAIN_SET") $paper "${@:2}" hydra.run.dir="$OUT/$1" > "$OUT/$1.log" 2>&1
  echo "trained $1: rc $? at $(( $(date +%s) - t0 )) s"
}
train mi &
train mi_corr model.objective.correspondence_weight=1 &
train iic model=iic model.lr=1e-4 &
{
  python experiments/scale/oracle.py "$DATA/$TRAIN_SET" 2 1000000 0 "$OUT/oracle.json" --setting paper \
    --device "$([ "$ACC" = gpu ] && echo cuda || echo cpu)" --max-seconds "$ORACLE_S" > "$OUT/oracle.log" 2>&1
  echo "oracle: rc $? at $(( $(date +%s) - t0 )) s"
} &
wait

evaluate() {  # evaluate NAME SET [ARGS]: probes of OUT/NAME's last checkpoint on SET's own images
  local d="$OUT/$1/eval/$2${3:-}"
  python -m misseg.evaluate ckpt_path="$OUT/$1/checkpoints/last.ckpt" $(data "$2") trainer.accelerator=$ACC \
    trainer.enable_progress_bar=false report=false probe=all ${3:+init=random} hydra.run.dir="$d" > "$d.log" 2>&1
  echo "evaluated $1 on $2${3:-}: rc $? at $(( $(date +%s) - t0 )) s"
}
baselines() {  # baselines SET: K-means on RGB (K = the classes, 2) and the trivial one-cluster map at 128 px
  python -m misseg.baselines.kmeans $(data "$1") report=false hydra.run.dir="$OUT/baselines/$1/kmeans" \
    > "$OUT/baselines/$1.kmeans.log" 2>&1
  python -m misseg.baselines.kmeans $(data "$1") kmeans.K=1 matching=majority report=false \
    hydra.run.dir="$OUT/baselines/$1/trivial" > "$OUT/baselines/$1.trivial.log" 2>&1
  echo "baselines on $1: rc $? at $(( $(date +%s) - t0 )) s"
}
mkdir -p "$OUT/baselines" "$OUT/mi/eval" "$OUT/mi_corr/eval" "$OUT/iic/eval"
for set in $EVAL_SETS; do
  evaluate mi "$set" &
  evaluate mi_corr "$set" &
  evaluate iic "$set" &
  evaluate mi "$set" _random &
  baselines "$set" &
  wait
done
rm -f "$OUT"/*/checkpoints/*.ckpt  # hundreds of MB at P = 2048: metrics and curves come back, weights do not
python experiments/scale/gpu_summary.py "$OUT" $EVAL_SETS | tee "$OUT/summary.md"
echo "total $(( $(date +%s) - t0 )) s"
