#!/usr/bin/env bash
# The levers of sections 18-23 on the thesis's objective, one knob each; every run is named after its knobs,
# mi[_proto|_centroids[_reseed<N>][_over<M>[_coassign]]][_<NEGATIVES>][_entropy<W>][_centred][_<CRITIC>][_views2[_vflip]|_shift<N>][_corr<W>][_crftarget<W>[_from<N>]][_mlp][_stages<N>[_lr<W>]]<encoder suffix>, so a knob at
# its default leaves the name alone.
#   NEGATIVES (model.objective.negatives): local (default, the thesis: the same position of the other images);
#     own_image (section 18: the image's other positions, so the bound is I(L; S | x) and nothing that tells images
#     apart meets it); mixed (section 23: half of each, `jsd_mixed`: bands repeated in every image carry nothing
#     against the other-image half, whole-image labels nothing against the own-image half).
#     heads (section 25: the K H_k, 1/K each, `jsd_uniform_heads`: the bound no longer rewards equal clusters;
#     with HEADS=centroids, whose re-seeding stands against its one-cluster optimum); own_image_balanced (section 35:
#     own_image with each of the image's clusters weighing the same, `jsd_own_image_balanced`: no reward for equal sizes);
#     mixed_balanced (section 35: mixed with each half's clusters weighing the same, `jsd_mixed_balanced`).
#   ENTROPY=W (model.objective.entropy_weight, section 25): subtract W * H(E[p']) over the batch (IIC's prior on the
#     cluster marginal) from the loss; 0 (default) leaves it and the name alone.
#   CENTRE=true (model.objective.centre_heads, section 26): the H_k minus their mean over k before the bound (p'
#     unchanged; the score <L_ij, mean_k H_k> that every pair of L_ij shares goes); false (default) leaves the name.
#   CRITIC (model.objective.critic): affine (default; section 19: T = a <L, S> + b, a = tau exp(s), s and b learned,
#     so the critic starts in the softmax's units), scaled (section 20: T = tau <L, S> fixed), dot (the thesis).
#     CRITIC=dot NEGATIVES=local is the thesis's objective itself, named as its reference (mi_effnet4_frozen / mi).
#   HEADS: thesis (default: H_k = F_k(L), one per image) or prototypes (section 12: one H_k for every image, so the
#     other-image negatives cannot be met by an image code in the H_k; model/heads=prototypes, runs named mi_proto_...)
#     or centroids (section 24: H_k = running K-means centres of L, not learned; runs named mi_centroids_...).
#     RESEED_AFTER=N (model.heads.reseed_after, section 46): with HEADS=centroids, a class no position chose is
#     re-seeded after N batches in a row without it, not at once; 1 (default) leaves the name alone, another N adds
#     _reseed<N> after _centroids.
#     OVERCLUSTER=M (model.heads.overcluster, section 55): with HEADS=centroids, M K centres for the bound, merged into
#     K classes for the prediction, label-free; 1 (default) leaves the name alone, another M adds _over<M> after
#     _centroids[_reseed<N>]. MERGE (model.heads.merge): coassignment (default; the centres the positions' p' share,
#     named _over<M>_coassign) or centres (average linkage of the centres, section 55's first rule, named _over<M>).
#     MERGE_MOMENTUM=m (model.heads.merge_momentum, section 56): the co-assignment's running mean over about 1/(1-m)
#     batches instead of momentum's ten; named _over<M>_coassign_mm<m>.
#   VIEWS=2 (section 22): a second view (common.sh's views2: strong colour jitter + a horizontal flip, section 13);
#     VFLIP=true flips that view vertically at random too (section 16), against clusters that map image rows.
#   SHIFT=N (model.objective.view_shift, section 40): a second view that is the first one moved by up to N cells of
#     L's grid each way (no jitter, no flip: the shift is the only knob), the positions that wrapped around not
#     scored, against clusters that code where a pixel is in the crop; 0 (default) leaves the name alone. Not with VIEWS=2.
#   CORR=W (model.objective.correspondence_weight, section 28): subtract W * the joint term with the positive at the
#     corresponding position of the closest other image of the batch (section 7), the correspondences read from the
#     frozen ImageNet network's raw features (section 10's most precise reading, effnet_lite0_x4), kept from the
#     encoder's own pass (model/reference=encoder_body; with ENCODER=scratch, a copy of the encoder at init as in
#     section 7); 0 (default) leaves it and the name alone.
#   CRF_TARGET=W (model.objective.crf_target_weight, section 42): add W * the cross-entropy of p' against the run's own
#     prediction refined by the dense CRF (self-training, no labels), so the body is asked for the CRF's split, whose
#     edges follow the image's; 0 (default) leaves it and the name alone. CRF_START=N
#     (model.objective.crf_target_start, section 43): the target from optimizer step N on (the clusters form without
#     it first); 0 (default) leaves the name alone, another N adds _from<N> after _crftarget<W>.
#   PROJECTION=mlp (model.encoder.projection, section 39): L = the body's map through STEGO's head (the linear 1x1 map
#     plus a residual 1x1 MLP) instead of the linear map alone, so training can make directions the frozen body does
#     not hold linearly; linear (default) leaves the name alone. Frozen encoder only.
#   STAGES=N (model.encoder.trainable_stages, section 39): the frozen body's last N stages train (at 0.1 x model.lr,
#     BatchNorm statistics fixed), so the objective can change what the body holds; with CORR the correspondences
#     then come from a second, frozen copy of the network (model/reference=effnet_lite0_x4), not the training body.
#     0 (default) leaves the name alone. Frozen encoder only. STAGE_LR=W (model.encoder.stage_lr_scale): their lr
#     as a fraction of model.lr; 0.1 (default) leaves the name alone, another W adds _lr<W> after _stages<N>.
#     STAGE_START=N (model.encoder.stage_start, section 44): their lr is 0 before optimizer step N, so the run is the
#     frozen-body run up to step N; 0 (default) leaves the name alone, another N adds _from<N> after _stages<N>.
#   ENCODER: frozen (default: the frozen ImageNet network at 4x, suffix _effnet4_frozen) or scratch (the thesis's
#     encoder at common.sh's budget, no suffix).
# COCO-Stuff-15 runs give its thing pixels no gradient (model.ignore_in_loss=true), as its scratch reference.
# Sections 18, 19 and 21's prototype runs were made by lever_own_image_frozen.sh, since folded into this script with
# the same overrides (CRITIC=dot|affine NEGATIVES=own_image [HEADS=prototypes]); section 23 re-ran one of them with it.
# 450 steps (MAX_STEPS=900 etc.: runs into $RUNS/small900/..., common.sh), one view unless VIEWS=2, two runs side by
# side, clusters only (NO_DIAG), agreement.py on the last checkpoint into RUN/agreement.md.
# Usage: [WEIGHTS=/work/weights/tf_efficientnet_lite0.pth] [ENCODER=scratch] [CRITIC=scaled|dot]
#        [NEGATIVES=own_image|mixed|heads|own_image_balanced|mixed_balanced] [ENTROPY=1] [CENTRE=true] [HEADS=prototypes|centroids [RESEED_AFTER=10] [OVERCLUSTER=3 [MERGE=centres | MERGE_MOMENTUM=0.99]]] [VIEWS=2 [VFLIP=true] | SHIFT=4] [CORR=1] [CRF_TARGET=1 [CRF_START=150]] [PROJECTION=mlp] [STAGES=2 [STAGE_LR=1] [STAGE_START=150]]
#        [SEEDS="0 1 2"] [MAX_STEPS=900]
#        [SETS="ccp_persons coco_persons"] bash experiments/scale/lever_critic.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
case ${CRITIC:=affine} in dot) critic= ;; affine | scaled) critic=_$CRITIC ;; *)
  echo "CRITIC: unknown critic '$CRITIC'; use affine, scaled or dot" >&2; exit 2 ;;
esac
case ${NEGATIVES:=local} in local) negatives= ;; own_image | mixed | heads | own_image_balanced | mixed_balanced) negatives=_$NEGATIVES ;; *)
  echo "NEGATIVES: unknown negatives '$NEGATIVES'; use local, own_image, mixed, heads, own_image_balanced or mixed_balanced" >&2
  exit 2 ;;
esac
# check_number KNOB WHAT: one line and exit 2 unless the knob's value is a decimal number >= 0 ("KNOB: 'x' is not WHAT")
check_number() {
  [[ ${!1} =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$1: '${!1}' is not $2" >&2; exit 2; }
}
# weight_suffix KNOB NAME: "_NAME<W>" for the knob's weight W > 0, nothing for 0; one line and exit 2 for a
# non-number (use it as x=$(weight_suffix ...): the script runs with set -e, so the failed substitution stops it)
weight_suffix() {
  check_number "$1" "a weight; use a number >= 0, e.g. 1"
  awk -v w="${!1}" -v name="$2" 'BEGIN { if (w + 0 > 0) printf "_%s%g", name, w }'
}
ENTROPY=${ENTROPY:-0}
entropy=$(weight_suffix ENTROPY entropy)
case ${CENTRE:=false} in false) centred= ;; true) centred=_centred ;; *)
  echo "CENTRE: '$CENTRE' is not a switch; use true or false" >&2; exit 2 ;;
esac
case ${HEADS:=thesis} in thesis) heads= ;; prototypes) heads=_proto ;; centroids) heads=_centroids ;; *)
  echo "HEADS: unknown heads '$HEADS'; use thesis, prototypes or centroids" >&2; exit 2 ;;
esac
[[ ${RESEED_AFTER:=1} =~ ^[1-9][0-9]*$ ]] || { echo "RESEED_AFTER: '$RESEED_AFTER' is not a number of batches; use e.g. 10 (1 = at once)" >&2; exit 2; }
reseed=; reseed_args=
if [ "$RESEED_AFTER" != 1 ]; then
  [ "$HEADS" = centroids ] || { echo "RESEED_AFTER=$RESEED_AFTER needs HEADS=centroids (the centres it re-seeds)" >&2; exit 2; }
  reseed=_reseed$RESEED_AFTER reseed_args="model.heads.reseed_after=$RESEED_AFTER"
fi
[[ ${OVERCLUSTER:=1} =~ ^[1-9][0-9]*$ ]] || { echo "OVERCLUSTER: '$OVERCLUSTER' is not a number of centres per class; use e.g. 3 (1 = K centres)" >&2; exit 2; }
case ${MERGE:=coassignment} in coassignment) merge=_coassign ;; centres) merge= ;; *)
  echo "MERGE: unknown merge '$MERGE'; use coassignment or centres" >&2; exit 2 ;;
esac
if [ "$OVERCLUSTER" != 1 ]; then
  [ "$HEADS" = centroids ] || { echo "OVERCLUSTER=$OVERCLUSTER needs HEADS=centroids (the centres it multiplies)" >&2; exit 2; }
  reseed=${reseed}_over$OVERCLUSTER$merge
  reseed_args="$reseed_args model.heads.overcluster=$OVERCLUSTER model.heads.merge=$MERGE"
  if [ -n "${MERGE_MOMENTUM:-}" ]; then
    [ "$MERGE" = coassignment ] || { echo "MERGE_MOMENTUM=$MERGE_MOMENTUM needs MERGE=coassignment (the statistic it averages)" >&2; exit 2; }
    [[ $MERGE_MOMENTUM =~ ^0?\.[0-9]+$ ]] || { echo "MERGE_MOMENTUM: '$MERGE_MOMENTUM' is not a momentum in [0, 1); use e.g. 0.99" >&2; exit 2; }
    reseed=${reseed}_mm$MERGE_MOMENTUM
    reseed_args="$reseed_args model.heads.merge_momentum=$MERGE_MOMENTUM"
  fi
elif [ "$MERGE" != coassignment ]; then
  echo "MERGE=$MERGE needs OVERCLUSTER > 1 (the centres it merges)" >&2; exit 2
elif [ -n "${MERGE_MOMENTUM:-}" ]; then
  echo "MERGE_MOMENTUM=$MERGE_MOMENTUM needs OVERCLUSTER > 1 (the centres whose co-assignment it averages)" >&2; exit 2
fi
case ${VIEWS:=1}/${VFLIP:=false} in 1/false) views=; view_args= ;; 2/false) views=_views2; view_args=$views2 ;;
  2/true) views=_views2_vflip; view_args="$views2 model.objective.view_vflip=true" ;;
  1/true) echo "VFLIP=true needs VIEWS=2 (it flips the second view)" >&2; exit 2 ;;
  *) echo "VIEWS=$VIEWS VFLIP=$VFLIP: use VIEWS=1 or 2 and VFLIP=false or true" >&2; exit 2 ;;
esac
[[ ${SHIFT:=0} =~ ^[0-9]+$ ]] || { echo "SHIFT: '$SHIFT' is not a number of cells; use e.g. 4 (0 = off)" >&2; exit 2; }
if [ "$SHIFT" != 0 ]; then
  [ "$VIEWS" = 1 ] || { echo "SHIFT=$SHIFT is a second view of its own (no jitter, no flip); leave VIEWS=1" >&2; exit 2; }
  views=_shift$SHIFT
  view_args="model.objective.views=2 model.objective.view_jitter=0 model.objective.view_hue=0"
  view_args="$view_args model.objective.view_hflip=false model.objective.view_shift=$SHIFT"
fi
CORR=${CORR:-0}
corr=$(weight_suffix CORR corr)
CRF_TARGET=${CRF_TARGET:-0}
crftarget=$(weight_suffix CRF_TARGET crftarget)
# start_step NAME LEVER NEEDS: NAME's optimizer step, 0 by default and normalised (0150 -> 150, 00 -> 0: one name and
# one start per value); refused when not a number, or when > 0 and LEVER (the started lever's name part) is empty
start_step() {
  local step=${!1:-0}
  [[ $step =~ ^[0-9]+$ ]] || { echo "$1: '$step' is not a training step; use e.g. 150" >&2; exit 2; }
  step=$((10#$step))
  [ "$step" = 0 ] || [ -n "$2" ] || { echo "$1=$step needs $3" >&2; exit 2; }
  echo "$step"
}
crf_start=  # passed only when > 0, so the earlier runs' commands are unchanged
CRF_START=$(start_step CRF_START "$crftarget" "CRF_TARGET > 0 (the target it starts)")
if [ "$CRF_START" != 0 ]; then
  crftarget=${crftarget}_from$CRF_START crf_start="model.objective.crf_target_start=$CRF_START"
fi
case ${PROJECTION:=linear} in linear) projection= ;; mlp) projection=_mlp ;; *)
  echo "PROJECTION: unknown projection '$PROJECTION'; use linear or mlp" >&2; exit 2 ;;
esac
[[ ${STAGES:=0} =~ ^[0-9]$ ]] || { echo "STAGES: '$STAGES' is not a number of stages; use 0-7" >&2; exit 2; }
stages=; [ "$STAGES" = 0 ] || stages=_stages$STAGES
STAGE_LR=${STAGE_LR:-0.1}
check_number STAGE_LR "a number; use e.g. 0.1 or 1"
if [ "$STAGE_LR" != 0.1 ]; then
  [ -n "$stages" ] || { echo "STAGE_LR=$STAGE_LR needs STAGES > 0 (the stages it sets the lr of)" >&2; exit 2; }
  stages=${stages}_lr$STAGE_LR
fi
STAGE_START=$(start_step STAGE_START "$stages" "STAGES > 0 (the stages it starts)")
[ "$STAGE_START" = 0 ] || stages=${stages}_from$STAGE_START
case ${ENCODER:=frozen} in
  frozen) encoder=$(frozen_x4); suffix=_effnet4_frozen; lever_budget=$timm_budget
    if [ -n "$corr" ] && [ -n "$stages" ]; then
      encoder="$encoder model/reference=effnet_lite0_x4 model.reference.weights=$WEIGHTS"
    elif [ -n "$corr" ]; then
      encoder="$encoder model/reference=encoder_body"
    fi
    [ -z "$stages" ] || encoder="$encoder model.encoder.trainable_stages=$STAGES model.encoder.stage_lr_scale=$STAGE_LR"
    [ "$STAGE_START" = 0 ] || encoder="$encoder model.encoder.stage_start=$STAGE_START"
    [ -z "$projection" ] || encoder="$encoder model.encoder.projection=$PROJECTION" ;;
  scratch) encoder=model=mi; suffix=; lever_budget=$budget
    [ -z "$projection$stages" ] || { echo "PROJECTION and STAGES need the frozen encoder (ENCODER=frozen)" >&2; exit 2; } ;;
  *) echo "ENCODER: unknown encoder '$ENCODER'; use frozen or scratch" >&2; exit 2 ;;
esac
check_seeds ${SEEDS:-0 1 2}
sets=${SETS:-human_seg coco_persons ccp_persons}
check_sets $sets
export NO_DIAG=1
name_of() { echo "mi${heads}${reseed}${negatives}${entropy}${centred}${critic}${views}${corr}${crftarget}${projection}${stages}${suffix}"; }  # name_of METHOD: the run's folder name
train() {  # train SET K SEED METHOD
  local ignore=false
  [ "$1" = coco_stuff15 ] && ignore=true  # stuff-15's thing pixels get no gradient, as in its reference
  budget=$lever_budget lever "$1" "$2" "$3" "$(name_of "$4")" $encoder model.objective.critic="$CRITIC" \
    model.objective.negatives="$NEGATIVES" model.objective.entropy_weight="$ENTROPY" \
    model.objective.centre_heads=$CENTRE model.objective.correspondence_weight="$CORR" model.ignore_in_loss=$ignore ${heads:+model/heads=$HEADS} $view_args \
    ${crftarget:+model.objective.crf_target_weight=$CRF_TARGET} $crf_start $reseed_args
}
lever_jobs "$sets" "${SEEDS:-0 1 2}" mi
run_lever_jobs
