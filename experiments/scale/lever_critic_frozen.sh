#!/usr/bin/env bash
# Section 20 (fifteenth session): the critic's scale with the thesis's negatives (the same position of another
# image, negatives=local). Section 19's control found that on Human-Seg the affine critic alone (T = a <L, S> + b,
# a = tau exp(s), s and b learned) meets the K = 2 target without own-image negatives; the learned a hardly moved from
# tau. CRITIC=affine (default) runs that lever on more sets (runs named mi_affine_effnet4_frozen, the name of section
# 19's control); CRITIC=scaled fixes T = tau <L, S> with nothing learned (mi_scaled_effnet4_frozen), which asks whether
# the starting scale alone does the work. Reference: mi_effnet4_frozen (pretrained_frozen.sh METHODS=mi), the same run
# with the thesis's T = <L, S>. Everything else as lever_own_image_frozen.sh: the frozen ImageNet network at 4x, one
# view, 450 steps, two runs side by side, clusters only (NO_DIAG), agreement.py into RUN/agreement.md.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [CRITIC=scaled] [SEEDS="0 1 2"]
#        [SETS="ccp_persons coco_persons"] bash experiments/scale/lever_critic_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
case ${CRITIC:=affine} in affine | scaled) ;; *)
  echo "CRITIC: unknown critic '$CRITIC'; use affine or scaled" >&2; exit 2 ;;
esac
check_seeds ${SEEDS:-0 1 2}
sets=${SETS:-human_seg coco_persons ccp_persons}
check_sets $sets
export NO_DIAG=1
name_of() { echo "mi_${CRITIC}_effnet4_frozen"; }  # name_of METHOD: the run's folder name
train() {  # train SET K SEED METHOD
  budget=$timm_budget lever "$1" "$2" "$3" "$(name_of "$4")" $frozen model.objective.critic="$CRITIC"
}
lever_jobs "$sets" "${SEEDS:-0 1 2}" mi
run_lever_jobs
