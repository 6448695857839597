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
# More seeds (section 50): SEEDS="1 2" RUNS="mi iic" ORACLE=false BASELINES=false STEPS="mi=1917 iic=2034" trains
# each run per seed into WORK/seedS/NAME (seed=S: its draw, and its evaluation's probe split, as the CPU scripts do),
# each stopped at its STEPS (section 32's seed-0 counts) or at TRAIN_S, whichever comes first; SEEDS=0 alone keeps
# section 32's layout (WORK/NAME). RUNS: any of mi, mi_corr, iic.
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
SEEDS=${SEEDS:-0}
RUNS=${RUNS:-mi mi_corr iic}
ORACLE=${ORACLE:-true}
BASELINES=${BASELINES:-true}
STEPS=${STEPS:-}          # "NAME=N ...": trainer.max_steps of those runs (TRAIN_S still stops them)
for r in $RUNS; do
  case $r in mi | mi_corr | iic) ;; *) echo "RUNS: '$r' is not one of mi, mi_corr, iic" >&2; exit 2 ;; esac
done
for seed in $SEEDS; do
  [[ $seed =~ ^[0-9]+$ ]] || { echo "SEEDS: '$seed' is not a seed; use integers such as SEEDS=\"1 2\"" >&2; exit 2; }
done
for b in ORACLE BASELINES; do
  case ${!b} in true | false) ;; *) echo "$b: '${!b}' is not a switch; use true or false" >&2; exit 2 ;; esac
done
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
paper="$paper trainer.deterministic=false"  # speed over bit-identical reruns: the steps that fit TRAIN_S were timed so
limit=$((TRAIN_S + 120))  # a training or a baseline that has not ended by then is stopped
rundir() {  # rundir SEED NAME: section 32's layout for seed 0 alone, a folder per seed otherwise
  if [ "$SEEDS" = 0 ]; then echo "$WORK/$2"; else echo "$WORK/seed$1/$2"; fi
}
max_steps() {  # max_steps NAME: STEPS's count for NAME as an override, or nothing (TRAIN_S alone stops it)
  local kv
  for kv in $STEPS; do [ "${kv%%=*}" = "$1" ] && echo "trainer.max_steps=${kv#*=}"; done
}
train() {  # train SEED NAME: one run of NAME (mi, mi_corr, iic) with seed SEED into rundir
  local d args
  d=$(rundir "$1" "$2")
  case $2 in
    mi) args="model.P=$MI_P" ;;  # experiment=folder's P = 256 is the CPU default; the thesis's P is 2048
    mi_corr) args="model.P=$MI_P model.objective.correspondence_weight=1" ;;
    iic) args="model=iic model.lr=1e-4" ;;
  esac
  mkdir -p "$(dirname "$d")"
  timeout $limit python -m misseg.train $(data "$TRAIN_SET") $paper seed=$1 $args $(max_steps "$2") hydra.run.dir="$d" \
    > "$d.log" 2>&1
  local rc=$? step  # the optimizer steps the last checkpoint holds (the CSV logs every 10th step only)
  step=$(python -c "import torch, sys; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['global_step'])" \
    "$d/checkpoints/last.ckpt" 2>/dev/null)
  log "trained $2 seed $1: rc $rc, ${step:-?} steps, at $(( $(date +%s) - t0 )) s"
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
if [ "$BASELINES" = true ]; then
  for set in $EVAL_SETS; do baselines "$set" & done  # CPU only: done while the card trains
fi
for seed in $SEEDS; do
  for r in $RUNS; do train "$seed" "$r" & done
done
if [ "$ORACLE" = true ]; then
  {
    timeout $((2 * ORACLE_S + 150)) python experiments/scale/oracle.py "$DATA/$TRAIN_SET" 2 1000000 0 "$WORK/oracle.json" --setting paper \
      --device "$([ "$ACC" = gpu ] && echo cuda || echo cpu)" --max-seconds "$ORACLE_S" --model P=$MI_P > "$WORK/oracle.log" 2>&1
    log "oracle: rc $? at $(( $(date +%s) - t0 )) s"
  } &
fi
wait

evaluate() {  # evaluate SEED NAME SET [_random]: probes of NAME's last checkpoint on SET's own images (split: SEED)
  local r
  r=$(rundir "$1" "$2")
  local d="$r/eval/$3${4:-}"
  mkdir -p "$r/eval"
  local left=$((DEADLINE_S - $(date +%s) + t0))
  left=$((left < EVAL_S ? left : EVAL_S)); left=$((left < 1 ? 1 : left))  # timeout 0 would mean no limit
  timeout "$left" python -m misseg.evaluate ckpt_path="$r/checkpoints/last.ckpt" $(data "$3" 3) seed=$1 trainer.accelerator=$ACC \
    trainer.enable_progress_bar=false report=false probe=all ${4:+init=random} hydra.run.dir="$d" > "$d.log" 2>&1
  log "evaluated $2 seed $1 on $3${4:-}: rc $? at $(( $(date +%s) - t0 )) s"
}
# one set at a time: on the first device call 12 processes with probe=all at once (and K-means RGB beside them) all
# ran past their 120 s (data loading and K-means are CPU work); 4 at a time took 22-55 s per probe
for set in $EVAL_SETS; do
  for seed in $SEEDS; do
    for r in $RUNS; do evaluate "$seed" "$r" "$set" & done
    [[ " $RUNS " != *" mi "* ]] || evaluate "$seed" mi "$set" _random &
  done
  wait
done
for seed in $SEEDS; do  # one table per seed's folder (rundir's); the picture from the first seed
  base=$(dirname "$(rundir "$seed" mi)")
  [ "$base" = "$WORK" ] || { ln -sfn ../baselines "$base/baselines"; echo "## seed $seed"; }
  python experiments/scale/gpu_summary.py "$base" $EVAL_SETS --runs "$(echo $RUNS | tr ' ' ,)" \
    $([ "$seed" = "${SEEDS%% *}" ] && echo --figure "$WORK/gpu_thesis.png")
done | tee "$WORK/summary.md"
log "total $(( $(date +%s) - t0 )) s"
