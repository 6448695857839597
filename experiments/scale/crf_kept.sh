#!/usr/bin/env bash
# Section 38 (b): STEGO's table for the kept settings (README.md's second Results table, the label-free rule's picks
# where they differ, and IIC on CamVid, whose figure is CamVid's target): each run's step-450 clusters and probes,
# and its clusters with the dense CRF. Per run two evaluations of the step-450 checkpoint, the layout levers_table.py
# reads: RUN/diag/step00450/SET (probe=all: the linear and K-means probes fitted on half the images and scored on the
# other half, the clusters on that half beside them) and RUN/diag/step00450_crf/SET (crf=true: the clusters on every
# image, refined). Evaluation only; a run without its checkpoint is skipped.
# ENTRIES="SET NAME;SET NAME..." evaluates those runs instead of the kept list (a lever's runs, section 39);
# "SET NAME TRAIN_SET" evaluates on SET the run NAME trained on TRAIN_SET (section 47: persons1400's runs on each
# person set), into that run's RUN/diag/.../SET (levers_table.py --trained-on TRAIN_SET reads them);
# INITIAL=true adds the probe target's reference, the same runs at their initial weights: RUN/diag/initial/SET
# (init=initial probe=linear: the frozen body and the seed's untrained projection). RANDOM_INIT=true adds issue 14's
# literal reference, the same architecture at a random init drawn with the run's seed: RUN/diag/random/SET
# (init=random probe=linear; levers_table.py's "linear probe, random init" column).
# MAX_STEPS=900 (common.sh): the same evaluations of the 900-step runs ($RUNS/small900, their step-900 checkpoint).
# Usage: [SEEDS="0 1 2"] [ENTRIES=...] [INITIAL=true] [RANDOM_INIT=true] [MAX_STEPS=900] bash experiments/scale/crf_kept.sh   (two at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
check_seeds ${SEEDS:-0 1 2}
case ${INITIAL:=false} in true | false) ;; *) echo "INITIAL: '$INITIAL' is not a switch; use true or false" >&2; exit 2 ;; esac
case ${RANDOM_INIT:=false} in true | false) ;; *)
  echo "RANDOM_INIT: '$RANDOM_INIT' is not a switch; use true or false" >&2; exit 2 ;;
esac
kept=(
  "ccp_persons mi_centroids_own_image_entropy1_centred_affine_effnet4_frozen"                  # section 26
  "human_seg mi_centroids_own_image_entropy1_centred_affine_effnet4_frozen"                    # 29
  "human_seg mi_centroids_mixed_balanced_entropy1_centred_affine_corr1_effnet4_frozen"         # 36 (label-free pick)
  "coco_persons mi_centroids_mixed_balanced_entropy1_centred_affine_corr1_effnet4_frozen"      # 35
  "camvid mi_centroids_heads_entropy1_centred_affine_effnet4_frozen"                           # 26
  "camvid mi_centroids_heads_entropy1_centred_affine_corr1_effnet4_frozen"                     # 28 (label-free pick)
  "coco_stuff15 mi_centroids_heads_entropy1_centred_affine_corr2_effnet4_frozen"               # 30
  "camvid iic"                                                                                 # CamVid's target
)
if [ -n "${ENTRIES:-}" ]; then
  IFS=';' read -r -a kept <<< "$ENTRIES"
  entry_sets=()
  for entry in "${kept[@]}"; do
    read -r set name train_set rest <<< "$entry"
    [ -n "${name:-}" ] && [ -z "${rest:-}" ] || { echo "ENTRIES: '$entry' is not 'SET NAME [TRAIN_SET]'" >&2; exit 2; }
    entry_sets+=("$set" ${train_set:+"$train_set"})
  done
  check_sets "${entry_sets[@]}"
fi
evaluate_kept() {  # evaluate_kept SET SEED NAME [TRAIN_SET]: both rows of one run (at MAX_STEPS: $small, step$last_step)
  local set=$1 seed=$2 d="$small/${4:-$1}/seed$2/$3"
  local ckpt="$d/checkpoints/step$last_step.ckpt"
  [ -f "$ckpt" ] || { echo "skip: $d (no step$last_step.ckpt)"; return 0; }
  SEED=$seed run "$d/diag/step$last_step/$set" misseg.evaluate ckpt_path="$ckpt" $(SEED=$seed data "$set") $eval_args probe=all
  SEED=$seed run "$d/diag/step${last_step}_crf/$set" misseg.evaluate ckpt_path="$ckpt" $(SEED=$seed data "$set") $eval_args crf=true
  [ "$INITIAL" = false ] || SEED=$seed run "$d/diag/initial/$set" misseg.evaluate \
    ckpt_path="$ckpt" $(SEED=$seed data "$set") $eval_args init=initial probe=linear
  [ "$RANDOM_INIT" = false ] || SEED=$seed run "$d/diag/random/$set" misseg.evaluate \
    ckpt_path="$ckpt" $(SEED=$seed data "$set") $eval_args init=random probe=linear
}
jobs=()
for seed in ${SEEDS:-0 1 2}; do
  for entry in "${kept[@]}"; do
    read -r set name train_set <<< "$entry"
    jobs+=("$set $seed $name${train_set:+ $train_set}")
  done
done
two_at_a_time evaluate_kept
