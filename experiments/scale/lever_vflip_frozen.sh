#!/usr/bin/env bash
# Section 16 (eleventh session): on the frozen ImageNet network at 4x, IIC's clusters, like MI's (section 11), split
# image rows, not the person (agreement.py: NMI with rows 0.65, with the classes 0.01): the upper/lower split is the
# one partition that IIC's second view (colour jitter + horizontal flip) and MI's (the same, stronger) leave
# unchanged. The lever takes that cue away: the second view is also flipped vertically at random, undone on the
# output (model.objective.vflip / view_vflip), so a map that follows rows disagrees with its own second view while
# one that follows content does not (tests/test_iic.py). METHODS: iic (IIC + vflip; reference iic_effnet4_frozen,
# pretrained_frozen.sh METHODS=iic) and/or mi (two-view MI + vflip; reference mi_views2_effnet4_frozen,
# lever_views_frozen.sh) and/or mi_proto (the same with prototype heads, model/heads=prototypes: one H_k for every
# image, so the bound cannot be met by an image code in the H_k, section 12) and/or mi_proto_hard (the same with S
# built from the predicted cluster, model.objective.hard_assignment: section 17, twelfth session, found the soft
# p' of mi_proto carrying the bound while its argmax follows nothing); default "iic mi". SEEDS (default
# 0 1 2), two runs side by side; clusters only (NO_DIAG), then what they follow: agreement.py into RUN/agreement.md.
# SETS: default ccp_persons.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [METHODS="iic mi_proto"] [SEEDS="0 1 2"] [SETS=ccp_persons]
#        bash experiments/scale/lever_vflip_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
for method in ${METHODS:-iic mi}; do
  case $method in iic | mi | mi_proto | mi_proto_hard) ;; *)
    echo "METHODS: unknown method '$method'; use iic, mi, mi_proto and/or mi_proto_hard" >&2; exit 2 ;;
  esac
done
check_seeds ${SEEDS:-0 1 2}
sets=${SETS:-ccp_persons}
check_sets $sets
export NO_DIAG=1
name_of() {  # name_of METHOD: the run's folder name
  case $1 in
    iic) echo iic_vflip_effnet4_frozen ;; mi) echo mi_views2_vflip_effnet4_frozen ;;
    mi_proto) echo mi_proto_views2_vflip_effnet4_frozen ;;
    mi_proto_hard) echo mi_proto_views2_vflip_hard_effnet4_frozen ;;
  esac
}
train() {  # train SET K SEED METHOD
  local args
  case $4 in
    iic) args="model=iic $frozen model.objective.vflip=true" ;;
    mi) args="$frozen $views2 model.objective.view_vflip=true" ;;
    mi_proto) args="$frozen model/heads=prototypes $views2 model.objective.view_vflip=true" ;;
    mi_proto_hard) args="$frozen model/heads=prototypes $views2 model.objective.view_vflip=true
      model.objective.hard_assignment=true" ;;
  esac
  budget=$timm_budget lever "$1" "$2" "$3" "$(name_of "$4")" $args
}
lever_jobs "$sets" "${SEEDS:-0 1 2}" "${METHODS:-iic mi}"
run_lever_jobs
