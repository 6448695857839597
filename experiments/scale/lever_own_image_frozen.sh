#!/usr/bin/env bash
# Section 18 (thirteenth session): every objective tried so far is met by a partition that all views of an image share
# and other images do not: rows (section 16), whole images (section 17: IIC + vflip on Human-Seg puts 92% of each image
# in one cluster), an image code in the thesis's H_k (section 12). All of them tell *images* apart, which eq. 4.12's
# negatives (the same position of another image) reward. The lever takes the negatives from the image itself
# (model.objective.negatives=own_image, objectives/mi.py jsd_own_image): the bound then estimates I(L; S | x), which
# any per-image code leaves at zero, so only a partition inside each image can raise it (tests/test_objective.py).
# One change against the thesis's objective on the frozen ImageNet network at 4x: METHODS=mi (reference
# mi_effnet4_frozen, pretrained_frozen.sh METHODS=mi) and/or mi_proto (prototype heads, one H_k for every image, so
# cluster k is the same vector in every image; reference mi_proto_effnet4_frozen, pretrained_frozen.sh
# METHODS=mi_proto); default mi. SEEDS (default 0 1 2), two runs side by side; clusters only (NO_DIAG), then what
# they follow: agreement.py into RUN/agreement.md. SETS: default "human_seg coco_persons" (the sets whose references
# are on this machine).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [METHODS="mi mi_proto"] [SEEDS="0 1 2"] [SETS=human_seg]
#        bash experiments/scale/lever_own_image_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
for method in ${METHODS:-mi}; do
  case $method in mi | mi_proto) ;; *)
    echo "METHODS: unknown method '$method'; use mi and/or mi_proto" >&2; exit 2 ;;
  esac
done
for seed in ${SEEDS:-0 1 2}; do
  [[ $seed =~ ^[0-9]+$ ]] || { echo "SEEDS: '$seed' is not a seed; use integers such as SEEDS=\"0 1 2\"" >&2; exit 2; }
done
sets=${SETS:-human_seg coco_persons}
check_sets $sets
export NO_DIAG=1
name_of() {  # name_of METHOD: the run's folder name
  case $1 in mi) echo mi_own_image_effnet4_frozen ;; mi_proto) echo mi_proto_own_image_effnet4_frozen ;; esac
}
train() {  # train SET K SEED METHOD
  local args="$frozen model.objective.negatives=own_image"
  [ "$4" = mi_proto ] && args="$args model/heads=prototypes"
  budget=$timm_budget lever "$1" "$2" "$3" "$(name_of "$4")" $args
}
jobs=()
for set in $sets; do
  K=$(wc -l < "$SMALL/$set/classes.txt")
  for seed in ${SEEDS:-0 1 2}; do
    for method in ${METHODS:-mi}; do jobs+=("$set $K $seed $method"); done
  done
done
for ((i = 0; i < ${#jobs[@]}; i += 2)); do  # two at a time (the machine's two cores)
  train ${jobs[i]} &
  [ $((i + 1)) -lt ${#jobs[@]} ] && train ${jobs[i + 1]}
  wait
done
for job in "${jobs[@]}"; do  # what the clusters follow: classes, K-means RGB, rows, columns, rings (agreement.py)
  read -r set _ seed method <<< "$job"
  d="$RUNS/small/$set/seed$seed/$(name_of "$method")"
  [ -f "$d/agreement.md" ] || [ ! -f "$d/checkpoints/step00450.ckpt" ] || "$PY" experiments/scale/agreement.py \
    "$SMALL/$set" "$d/checkpoints/step00450.ckpt" > "$d/agreement.md"
done
