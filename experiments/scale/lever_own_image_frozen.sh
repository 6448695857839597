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
# Section 19 (fourteenth session): CRITIC=affine adds model.objective.critic=affine (T = a <L, S> + b, a = tau exp(s),
# s and b learned; objectives/mi.py MIObjective): the bound given the image lives in a narrow range that <L, S> starts
# far outside. Its runs are named *_own_image_affine_*; the reference is the CRITIC=dot (default) run.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [METHODS="mi mi_proto"] [SEEDS="0 1 2"] [SETS=human_seg]
#        [CRITIC=affine] bash experiments/scale/lever_own_image_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
for method in ${METHODS:-mi}; do
  case $method in mi | mi_proto) ;; *)
    echo "METHODS: unknown method '$method'; use mi and/or mi_proto" >&2; exit 2 ;;
  esac
done
case ${CRITIC:=dot} in dot) critic="" ;; affine) critic=_affine ;; *)
  echo "CRITIC: unknown critic '$CRITIC'; use dot or affine" >&2; exit 2 ;;
esac
check_seeds ${SEEDS:-0 1 2}
sets=${SETS:-human_seg coco_persons}
check_sets $sets
export NO_DIAG=1
name_of() {  # name_of METHOD: the run's folder name
  case $1 in mi) echo mi_own_image${critic}_effnet4_frozen ;; mi_proto) echo mi_proto_own_image${critic}_effnet4_frozen ;; esac
}
train() {  # train SET K SEED METHOD
  local args="$frozen model.objective.negatives=own_image${critic:+ model.objective.critic=affine}"
  [ "$4" = mi_proto ] && args="$args model/heads=prototypes"
  budget=$timm_budget lever "$1" "$2" "$3" "$(name_of "$4")" $args
}
lever_jobs "$sets" "${SEEDS:-0 1 2}" "${METHODS:-mi}"
run_lever_jobs
