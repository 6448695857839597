#!/usr/bin/env bash
# The thesis's regime on one lent GPU (issue 14 part 3), in one call of about 8 minutes: the paper setting (128 px
# crops, batch 64, P = 2048, Adam 1e-4) trained on the 1,403-image person union for TRAIN_S seconds each, three
# runs side by side on the one card: MI paper-faithful, MI + the correspondence lever, IIC. Meanwhile the oracle
# test (oracle.py --setting paper: is the class partition a better optimum of eq. 4.12 than the learned one?).
# Then every run is scored on each set's own images (unsupervised, linear probe, K-means on L; MI's random init),
# beside K-means RGB and the trivial one-cluster map at the same 128 px. Works in WORK; brings back (the device
# tool returns at most 8 files, 2 folders down) OUT/summary.md, OUT/gpu_thesis.png, OUT/device.txt, OUT/progress.log
# and OUT/results.tar.gz (every metrics.json, CSV curve, log and the oracle's JSON; no checkpoints: hundreds of MB).
#
# Prepare on the CPU machine (data ~40 MB, wheels ~8 MB, ignored by git through .git/info/exclude's /.gpu/):
#   python experiments/scale/make_data.py --shared ../shared/data --out .gpu/data --side 128 --jpeg 90 \
#     --sets coco_persons,human_seg,ccp_persons && rm -rf .gpu/data/persons400
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .gpu/wheels hydra-core==1.3.8 omegaconf==2.3.1 kornia==0.9.0 kornia_rs==0.2.0
#   python -m pip wheel --no-deps -w .gpu/wheels antlr4-python3-runtime==4.9.3   # sdist only upstream: build it here
#   git rev-parse HEAD > .gpu/commit
# Run (device tool): command "OUT=$OUT bash experiments/scale/gpu_thesis.sh", carry [".gpu"], timeout_s 590.
# CPU smoke test of the same script (tiny: seconds per run, one small set):
#   ACC=cpu TRAIN_SET=coco_persons EVAL_SETS=coco_persons TRAIN_S=20 ORACLE_S=10 MI_P=64 EVAL_S=900 \
#     DEADLINE_S=1800 OUT=/tmp/gpu_smoke bash experiments/scale/gpu_thesis.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_thesis}
WORK=${WORK:-$OUT.work}
EVAL_S=${EVAL_S:-150}    # each set's evaluations stop here ...
DEADLINE_S=${DEADLINE_S:-540}  # ... or at this many seconds from the start: the call ends and packs on its own
MI_P=${MI_P:-2048}       # the thesis's P (the CPU smoke test passes a small one: P = 2048 takes minutes per CPU eval)
DATA=${DATA:-.gpu/data}
TRAIN_SET=${TRAIN_SET:-persons1400}
EVAL_SETS=${EVAL_SETS:-coco_persons human_seg ccp_persons}
TRAIN_S=${TRAIN_S:-240}
ORACLE_S=${ORACLE_S:-100}
ACC=${ACC:-gpu}
export WANDB_MODE=disabled PYTHONPATH=$PWD
mkdir -p "$OUT" "$WORK"
t0=$(date +%s)
pack() {  # what comes back: every run's metrics, curves and logs in one archive, the table and the card beside it
  cp "$WORK/device.txt" "$WORK/summary.md" "$WORK/progress.log" "$WORK/gpu_thesis.png" "$OUT/" 2>/dev/null
  tar czf "$OUT/results.tar.gz" -C "$WORK" --exclude='*.ckpt' . 2>/dev/null
}
trap pack EXIT
log() { echo "$*" | tee -a "$WORK/progress.log"; }  # not exec > >(tee): a bare `wait` would wait for the tee too
# the device image may have python3 only; a shim named python lets every line below read as on the CPU machine. An
# exec wrapper, not a symlink: a symlinked venv python outside its venv starts without the venv's packages
if ! command -v python > /dev/null && command -v python3 > /dev/null; then
  mkdir -p /tmp/pybin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > /tmp/pybin/python
  chmod +x /tmp/pybin/python && export PATH=/tmp/pybin:$PATH
fi
command -v python > /dev/null || { echo "gpu_thesis.sh: no python or python3 on PATH"; exit 2; }
if ! python -c "import hydra, kornia" 2>/dev/null; then  # the device image lacks these: install the carried wheels
  python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl 2>&1 | tail -1
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
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
  # .gpu/commit first: the device's copy of .git can be older than the working tree it was sent with
  echo "commit: $(cat .gpu/commit 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "device: $ACC"
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} > "$WORK/device.txt"
cat "$WORK/device.txt"

max_time=$(printf '00:00:%02d:%02d' $((TRAIN_S / 60)) $((TRAIN_S % 60)))
data() {  # data SET [WORKERS]: the folder set at the paper's 128 px, batch 64
  echo "experiment=folder data.root=$DATA/$1 data.resize_shorter=null data.image_size=128 data.batch_size=64 \
data.num_workers=${2:-4}"
}
paper="trainer.accelerator=$ACC trainer.max_epochs=100000 +trainer.max_time=$max_time"
paper="$paper trainer.check_val_every_n_epoch=100000 trainer.enable_progress_bar=false report=false model.K=2"
limit=$((TRAIN_S + 120))  # a training or a baseline that has not ended by then is stopped
train() {  # train NAME ARGS...: one run into OUT/NAME
  timeout $limit python -m misseg.train $(data "$TRAIN_SET") $paper "${@:2}" hydra.run.dir="$WORK/$1" > "$WORK/$1.log" 2>&1
  log "trained $1: rc $? at $(( $(date +%s) - t0 )) s"
}
baselines() {  # baselines SET: K-means on RGB (K = the classes, 2) and the trivial one-cluster map at 128 px
  timeout $limit python -m misseg.baselines.kmeans $(data "$1" 1) report=false hydra.run.dir="$WORK/baselines/$1/kmeans" \
    > "$WORK/baselines/$1.kmeans.log" 2>&1
  local rc=$?  # each baseline's own exit status: the first device call logged only the trivial's and hid a timeout
  timeout $limit python -m misseg.baselines.kmeans $(data "$1" 1) kmeans.K=1 matching=majority report=false \
    hydra.run.dir="$WORK/baselines/$1/trivial" > "$WORK/baselines/$1.trivial.log" 2>&1
  log "baselines on $1: K-means RGB rc $rc, trivial rc $? at $(( $(date +%s) - t0 )) s"
}
mkdir -p "$WORK/baselines"
for set in $EVAL_SETS; do baselines "$set" & done  # CPU only: done while the card trains
train mi model.P=$MI_P &  # experiment=folder's P = 256 is the CPU default; the thesis's P is 2048
train mi_corr model.P=$MI_P model.objective.correspondence_weight=1 &
train iic model=iic model.lr=1e-4 &
{
  timeout $((2 * ORACLE_S + 150)) python experiments/scale/oracle.py "$DATA/$TRAIN_SET" 2 1000000 0 "$WORK/oracle.json" --setting paper \
    --device "$([ "$ACC" = gpu ] && echo cuda || echo cpu)" --max-seconds "$ORACLE_S" --model P=$MI_P > "$WORK/oracle.log" 2>&1
  log "oracle: rc $? at $(( $(date +%s) - t0 )) s"
} &
wait

evaluate() {  # evaluate NAME SET [ARGS]: probes of OUT/NAME's last checkpoint on SET's own images
  local d="$WORK/$1/eval/$2${3:-}"
  local left=$((DEADLINE_S - $(date +%s) + t0))
  left=$((left < EVAL_S ? left : EVAL_S)); left=$((left < 1 ? 1 : left))  # timeout 0 would mean no limit
  timeout "$left" python -m misseg.evaluate ckpt_path="$WORK/$1/checkpoints/last.ckpt" $(data "$2" 3) trainer.accelerator=$ACC \
    trainer.enable_progress_bar=false report=false probe=all ${3:+init=random} hydra.run.dir="$d" > "$d.log" 2>&1
  log "evaluated $1 on $2${3:-}: rc $? at $(( $(date +%s) - t0 )) s"
}
mkdir -p "$WORK/mi/eval" "$WORK/mi_corr/eval" "$WORK/iic/eval"
# one set at a time, 4 processes: on the first device call 12 processes with probe=all at once (and K-means RGB
# beside them) all ran past their 120 s (data loading and K-means are CPU work); 4 at a time took 22-55 s per probe
for set in $EVAL_SETS; do
  evaluate mi "$set" &
  evaluate mi_corr "$set" &
  evaluate iic "$set" &
  evaluate mi "$set" _random &
  wait
done
python experiments/scale/gpu_summary.py "$WORK" $EVAL_SETS --figure "$WORK/gpu_thesis.png" | tee "$WORK/summary.md"
log "total $(( $(date +%s) - t0 )) s"
