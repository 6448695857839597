# Shared by the scale scripts (issue 14 part 3): paths, the budget of experiments/small_real/common.sh, and the
# skip-if-done runner. Data: the small copies of make_data.py (shorter side already 80 px, so no resize here;
# train = random 64 px crops, evaluation = the 64 px centre crop, as small_real's resize_shorter=80 image_size=64).
# One process at a time, one thread (the machine's other core is for the developers).
SMALL=${SMALL:-/work/data_small}
RUNS=${RUNS:-/work/exp_runs/scale}
SEED=${SEED:-0}
PY=${PY:-/work/main/.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$RUNS"

# data DIR: the data overrides of every command (train, evaluate, kmeans)
data() { echo "experiment=folder data.root=$SMALL/$1 data.resize_shorter=null data.image_size=64 data.batch_size=16 data.num_workers=1 seed=$SEED"; }
budget="trainer.accelerator=cpu trainer.max_epochs=100000 trainer.check_val_every_n_epoch=100000"
budget="$budget trainer.enable_progress_bar=false model.P=256 model.encoder.width=32 model.lr=1e-3"
# the overrides of every evaluation (misseg.evaluate) the scripts run
eval_args="trainer.accelerator=cpu trainer.enable_progress_bar=false report=false"
# the budget for a timm encoder (model/encoder=effnet_lite0...), which has no width; every other key as the budget's
timm_budget=${budget/model.encoder.width=32/}
# the second view of every two-view run (lever_views.sh, section 13's scripts): strong colour jitter + a flip
views2="model.objective.views=2 model.objective.view_jitter=0.8 model.objective.view_hue=0.5"
# keep a checkpoint every CKPT_EVERY steps (named by step; the runner prunes the ones not in KEEP)
# (the runs in README.md were made at commit ed643fd, before the model keys were re-spelled and before
# callbacks=steps existed; this is the same budget in today's spelling)
ckpts="callbacks=steps callbacks.steps_checkpoint.every_n_train_steps=${CKPT_EVERY:-150}"

# run DIR MODULE ARGS...: one run into DIR unless DIR/metrics.json exists; logs DIR.log and the command to DIR.cmd;
# a failure is reported, not fatal
run() {
  local dir=$1
  [ -f "$dir/metrics.json" ] && return 0
  mkdir -p "$(dirname "$dir")"
  printf "%q " "$PY" -m "${@:2}" hydra.run.dir="$dir" > "$dir.cmd"; echo >> "$dir.cmd"
  local t0=$(date +%s)
  "$PY" -m "${@:2}" hydra.run.dir="$dir" > "$dir.log" 2>&1 || { echo "FAILED: $dir (see $dir.log)"; return 0; }
  echo "$(( $(date +%s) - t0 ))" > "$dir.wall_s"
  echo "done: $dir ($(cat "$dir.wall_s") s)"
}

# MAX_STEPS (default 450): the length of train450's and lever's runs. Any other length is a compute point: its runs go
# to $RUNS/small<MAX_STEPS> (as section 14's small1500), so they never meet a 450-step run's folder, and their last
# checkpoint is step<MAX_STEPS> (5 digits); it has to be a multiple of the checkpoint interval, or there is none.
MAX_STEPS=${MAX_STEPS:-450}
[[ $MAX_STEPS =~ ^[0-9]+$ ]] && ((MAX_STEPS > 0 && MAX_STEPS % ${CKPT_EVERY:-150} == 0)) || {
  echo "MAX_STEPS: '$MAX_STEPS' is not a positive multiple of CKPT_EVERY=${CKPT_EVERY:-150}; use e.g. MAX_STEPS=900" >&2
  exit 2
}
small=$RUNS/small
[ "$MAX_STEPS" = 450 ] || small=$RUNS/small$MAX_STEPS
last_step=$(printf %05d "$MAX_STEPS")

# train450 SET K SEED NAME ARGS...: a 450-step run (MAX_STEPS) of this budget into $small/SET/seedSEED/NAME (ARGS:
# the method's overrides, e.g. model=iic or a lever), then its diagnosis (diagnose.sh: probes and random init) unless
# NO_DIAG is set (the clusters' own metrics.json only: for CPU time; diagnose.sh can follow later)
train450() {
  local d="$small/$1/seed$3/$4"
  SEED=$3 run "$d" misseg.train $(SEED=$3 data "$1") $budget $ckpts trainer.max_steps="$MAX_STEPS" report=false \
    model.K="$2" "${@:5}"
  [ -n "${NO_DIAG:-}" ] || STEPS=$last_step bash experiments/scale/diagnose.sh "$d" "$1"
}

# lever SET K SEED NAME ARGS...: train450, then agreement.py's description of the clusters (RUN/agreement.md), NO_DIAG
# or not: it reads the clusters only (1-3 min), and the lever scripts that set NO_DIAG promise it
lever() {
  local d="$small/$1/seed$3/$4"
  train450 "$@"
  [ -f "$d/agreement.md" ] || "$PY" experiments/scale/agreement.py "$SMALL/$1" "$d/checkpoints/step$last_step.ckpt" \
    > "$d/agreement.md" 2>/dev/null
}

# each_checkpoint NAME FUNC SET...: FUNC SET SEED RUN for seeds 0-2 of the run NAME on each SET
# (RUN = $RUNS/small/SET/seedSEED/NAME) that has its step-450 checkpoint; the others are named as skipped
each_checkpoint() {
  local name=$1 fn=$2 set seed d
  shift 2
  for set in "$@"; do
    for seed in 0 1 2; do
      d="$RUNS/small/$set/seed$seed/$name"
      [ -f "$d/checkpoints/step00450.ckpt" ] || { echo "skip: $d/checkpoints/step00450.ckpt (no such checkpoint)"; continue; }
      "$fn" "$set" "$seed" "$d"
    done
  done
}

# init_seed RUN SET: the seed of RUN's random-init reference on SET (diag/random's metrics.json records the draw:
# diagnose.sh drew seed 0 for every run, more_seeds.sh one per seed), so a later evaluation can refine the same one
init_seed() { grep -o 'random init (seed [0-9]*' "$1/diag/random/$2/metrics.json" | grep -o '[0-9]*$'; }

# weights_file: $WEIGHTS, the file experiments/scale/pretrained_weights.py wrote, or one line and exit 2 (use it as
# W=$(weights_file): the scripts run with set -e, so the failed substitution stops them)
weights_file() {
  [ -n "${WEIGHTS:-}" ] || { echo "set WEIGHTS to the file experiments/scale/pretrained_weights.py wrote" >&2; exit 2; }
  [ -f "$WEIGHTS" ] || { echo "WEIGHTS=$WEIGHTS: no such file; run experiments/scale/pretrained_weights.py OUT.pth first" >&2; exit 2; }
  echo "$WEIGHTS"
}

# frozen_x4: the overrides of the frozen ImageNet network read at 4x (sections 11-14), its weights weights_file's
# (use it as frozen=$(frozen_x4): without WEIGHTS the failed substitution stops the script, as weights_file's does)
frozen_x4() {
  local w
  w=$(weights_file) || exit 2
  echo "model/encoder=effnet_lite0_x4 model.encoder.weights=$w model.encoder.freeze=true"
}

# check_sets SET...: one line and exit 2 for the first SET with no folder under $SMALL; call it before the first run
check_sets() {
  local set
  for set in "$@"; do
    [ -d "$SMALL/$set" ] || { echo "SETS: no folder $SMALL/$set; make it with experiments/scale/make_data.py" >&2; exit 2; }
  done
}

# check_seeds SEED...: one line and exit 2 for the first SEED that is not an integer; call it before the first run
check_seeds() {
  local seed
  for seed in "$@"; do
    [[ $seed =~ ^[0-9]+$ ]] || { echo "SEEDS: '$seed' is not a seed; use integers such as SEEDS=\"0 1 2\"" >&2; exit 2; }
  done
}

# lever_jobs "SETS" "SEEDS" "METHODS": the array `jobs`, one "SET K SEED METHOD" per run (K: the lines of SET's
# classes.txt), for run_lever_jobs
lever_jobs() {
  local set K seed method
  jobs=()
  for set in $1; do
    K=$(wc -l < "$SMALL/$set/classes.txt")
    for seed in $2; do
      for method in $3; do jobs+=("$set $K $seed $method"); done
    done
  done
}

# two_at_a_time FUNC: `FUNC ENTRY` (its words as arguments) for every entry of the array `jobs`, two at a time (the
# machine's two cores)
two_at_a_time() {
  local i
  for ((i = 0; i < ${#jobs[@]}; i += 2)); do
    "$1" ${jobs[i]} &
    [ $((i + 1)) -lt ${#jobs[@]} ] && "$1" ${jobs[i + 1]}
    wait
  done
}

# run_lever_jobs: `train SET K SEED METHOD` for every entry of `jobs`, two at a time, then what each run's last
# clusters follow (classes, K-means RGB, rows, columns, rings: agreement.py) into RUN/agreement.md,
# RUN = $small/SET/seedSEED/$(name_of METHOD); the calling script defines train and name_of
run_lever_jobs() {
  local job set seed method d
  two_at_a_time train
  for job in "${jobs[@]}"; do
    read -r set _ seed method <<< "$job"
    d="$small/$set/seed$seed/$(name_of "$method")"
    [ -f "$d/agreement.md" ] || [ ! -f "$d/checkpoints/step$last_step.ckpt" ] || "$PY" experiments/scale/agreement.py \
      "$SMALL/$set" "$d/checkpoints/step$last_step.ckpt" > "$d/agreement.md"
  done
}
