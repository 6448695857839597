#!/usr/bin/env bash
# Section 20 (fifteenth session): the critic's scale with the thesis's negatives (the same position of another
# image, negatives=local). Section 19's control found that on Human-Seg the affine critic alone (T = a <L, S> + b,
# a = tau exp(s), s and b learned) meets the K = 2 target without own-image negatives; the learned a hardly moved from
# tau. CRITIC=affine (default) runs that lever; CRITIC=scaled fixes T = tau <L, S> with nothing learned, which asks
# whether the starting scale alone does the work. One change against the thesis's objective, on either encoder:
#   ENCODER=frozen (default): the frozen ImageNet network at 4x, runs named mi_<CRITIC>_effnet4_frozen (the name of
#     section 19's control), reference mi_effnet4_frozen (pretrained_frozen.sh METHODS=mi);
#   ENCODER=scratch: the thesis's encoder from scratch at common.sh's budget, runs named mi_<CRITIC>, reference mi
#     (more_seeds.sh, diagnose_small.sh; COCO-Stuff-15 with model.ignore_in_loss=true as there).
# Section 21 (sixteenth session): NEGATIVES=own_image (default local) adds section 18's negatives (the other positions
# of the same image), so that section 19's two changes run on any set, K > 2 included; runs named
# mi_own_image_<CRITIC>... (section 19's names). CRITIC=dot NEGATIVES=local is the thesis's objective itself, named as
# its reference (mi_effnet4_frozen / mi); it makes that reference where none was made with this script's settings
# (CamVid and COCO-Stuff-15 on the frozen network; stuff-15's thing pixels get no gradient here, as below).
# Section 22 (seventeenth session): VIEWS=2 adds a second view (common.sh's views2: strong colour jitter + a horizontal
# flip, section 13) and VFLIP=true flips that view vertically at random too (section 16's lever; VIEWS=2 only): on
# CamVid section 21's clusters are the same horizontal bands in every image, a map of position that a vertically
# flipped view contradicts while a map of content does not. Runs named ..._views2[_vflip]_effnet4_frozen.
# Section 23 (eighteenth session): NEGATIVES=mixed draws half the negatives' weight from the image's other positions and
# half from the same position of the other images (`jsd_mixed`): bands repeated in every image carry nothing against
# the second half, whole-image labels nothing against the first. HEADS=prototypes (default thesis) gives every image
# the same H_k (section 12), so the other-image half cannot be met by an image code in the H_k; runs named
# mi_proto_... (section 21's mi_proto_own_image_affine_effnet4_frozen is HEADS=prototypes NEGATIVES=own_image).
# 450 steps, one view unless VIEWS=2, two runs side by side, clusters only (NO_DIAG), agreement.py into RUN/agreement.md.
# Usage: [WEIGHTS=/work/weights/tf_efficientnet_lite0.pth] [ENCODER=scratch] [CRITIC=scaled|dot]
#        [NEGATIVES=own_image|mixed] [HEADS=prototypes] [VIEWS=2 [VFLIP=true]] [SEEDS="0 1 2"] [SETS="ccp_persons coco_persons"] bash experiments/scale/lever_critic.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
case ${CRITIC:=affine} in dot) critic= ;; affine | scaled) critic=_$CRITIC ;; *)
  echo "CRITIC: unknown critic '$CRITIC'; use affine, scaled or dot" >&2; exit 2 ;;
esac
case ${NEGATIVES:=local} in local) negatives= ;; own_image | mixed) negatives=_$NEGATIVES ;; *)
  echo "NEGATIVES: unknown negatives '$NEGATIVES'; use local, own_image or mixed" >&2; exit 2 ;;
esac
case ${HEADS:=thesis} in thesis) heads= ;; prototypes) heads=_proto ;; *)
  echo "HEADS: unknown heads '$HEADS'; use thesis or prototypes" >&2; exit 2 ;;
esac
case ${VIEWS:=1}/${VFLIP:=false} in 1/false) views=; view_args= ;; 2/false) views=_views2; view_args=$views2 ;;
  2/true) views=_views2_vflip; view_args="$views2 model.objective.view_vflip=true" ;;
  1/true) echo "VFLIP=true needs VIEWS=2 (it flips the second view)" >&2; exit 2 ;;
  *) echo "VIEWS=$VIEWS VFLIP=$VFLIP: use VIEWS=1 or 2 and VFLIP=false or true" >&2; exit 2 ;;
esac
case ${ENCODER:=frozen} in
  frozen) encoder=$(frozen_x4); suffix=_effnet4_frozen; lever_budget=$timm_budget ;;
  scratch) encoder=model=mi; suffix=; lever_budget=$budget ;;
  *) echo "ENCODER: unknown encoder '$ENCODER'; use frozen or scratch" >&2; exit 2 ;;
esac
check_seeds ${SEEDS:-0 1 2}
sets=${SETS:-human_seg coco_persons ccp_persons}
check_sets $sets
export NO_DIAG=1
name_of() { echo "mi${heads}${negatives}${critic}${views}${suffix}"; }  # name_of METHOD: the run's folder name
train() {  # train SET K SEED METHOD
  local ignore=false
  [ "$1" = coco_stuff15 ] && ignore=true  # stuff-15's thing pixels get no gradient, as in its reference
  budget=$lever_budget lever "$1" "$2" "$3" "$(name_of "$4")" $encoder model.objective.critic="$CRITIC" \
    model.objective.negatives="$NEGATIVES" model.ignore_in_loss=$ignore ${heads:+model/heads=prototypes} $view_args
}
lever_jobs "$sets" "${SEEDS:-0 1 2}" mi
run_lever_jobs
