#!/usr/bin/env bash
# Section 11: the thesis's objective and IIC on the frozen ImageNet network read at 4x (model/encoder=effnet_lite0_x4,
# freeze=true; only the 1x1 projection to L and the heads train), where a linear probe on L before any training
# reads the person at 0.806 (2x: 0.696). Same budget and seeds as sections 4-10 (64 px, P = 256, batch 16, Adam
# 1e-3, 450 steps, seeds 0-2), ccp_persons. First the frozen network's probes before training (evaluate
# init=initial), then per seed MI and IIC, each with its diagnosis (diagnose.sh: probes, random init) and
# agreement.py. METHODS="mi iic" (default) picks which to run; mi_shuffled = mi with shuffled negative positions
# (the thesis's same-position negatives penalise a person who stands in the middle of every image; sixth session);
# mi_proto = mi with prototype heads (model/heads=prototypes: one learned H_k per class for every image, so the
# bound cannot be met by an image code of the F_k; seventh session, section 12).
# NO_DIAG=1: train and score the clusters only (common.sh), for CPU time. SETS: the sets to train on, each scored on
# its own images (default ccp_persons; seventh session: coco_persons too). On coco_stuff15 the thing pixels get no
# gradient (model.ignore_in_loss=true), as in every other run on that set (lever_critic.sh made its mi run so).
# SEEDS (default "0 1 2"): the seeds, one after another (section 49 ran one call per seed side by side).
# STAGES=N (section 50): the body's last N stages train at 0.1 x model.lr from the first step
# (model.encoder.trainable_stages=N, as lever_critic.sh's STAGES), the name gains _stagesN: IIC with the trainable
# parameters of MI's kept person settings. 0 (default): the frozen body, the names as before.
# iic_vflip (section 52): IIC whose second view is also flipped vertically at random, undone on the output
# (model.objective.vflip, lever_vflip_frozen.sh's lever): section 51 found IIC's trained stages learning image rows,
# the one code its colour-and-hflip views leave unchanged. Name iic_vflip[_stagesN]_effnet4_frozen.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [METHODS=mi] [NO_DIAG=1] [SETS="ccp_persons coco_persons"]
#        [SEEDS="0 1 2"] [STAGES=2] bash experiments/scale/pretrained_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
for method in ${METHODS:-mi iic}; do  # check every name before the first (long) run
  case $method in mi | iic | iic_vflip | mi_shuffled | mi_proto) ;; *)
    echo "METHODS: unknown method '$method'; use mi, iic, iic_vflip, mi_shuffled and/or mi_proto" >&2; exit 2 ;;
  esac
done
check_seeds ${SEEDS:-0 1 2}
[[ ${STAGES:=0} =~ ^[0-9]+$ ]] || { echo "STAGES: '$STAGES' is not a number of stages; use e.g. STAGES=2" >&2; exit 2; }
stages="" tag=""
if [ "$STAGES" != 0 ]; then
  stages="model.encoder.trainable_stages=$STAGES model.encoder.stage_lr_scale=0.1" tag=_stages$STAGES
fi
check_sets ${SETS:-ccp_persons}
for set in ${SETS:-ccp_persons}; do
  K=$(wc -l < "$SMALL/$set/classes.txt")
  frozen_set=$frozen
  [ "$set" = coco_stuff15 ] && frozen_set="$frozen model.ignore_in_loss=true"
  for seed in ${SEEDS:-0 1 2}; do
    for method in ${METHODS:-mi iic}; do
      case $method in
        mi) budget=$timm_budget lever "$set" "$K" "$seed" mi${tag}_effnet4_frozen $frozen_set $stages ;;
        iic) budget=$timm_budget lever "$set" "$K" "$seed" iic${tag}_effnet4_frozen model=iic $frozen_set $stages ;;
        iic_vflip) budget=$timm_budget lever "$set" "$K" "$seed" iic_vflip${tag}_effnet4_frozen model=iic $frozen_set \
          $stages model.objective.vflip=true ;;
        mi_shuffled) budget=$timm_budget lever "$set" "$K" "$seed" mi_shuffled${tag}_effnet4_frozen $frozen_set $stages \
          model.objective.negative_positions=shuffled ;;
        mi_proto) budget=$timm_budget lever "$set" "$K" "$seed" mi_proto${tag}_effnet4_frozen $frozen_set $stages model/heads=prototypes ;;
      esac
      d="$RUNS/small/$set/seed$seed/${method}${tag}_effnet4_frozen"
      # the frozen network before training (its weights, a seeded 1x1 projection, random heads), once per architecture
      if [ "$seed" = 0 ] && [ "$method" = mi -o "$method" = iic ] && [ -z "${NO_DIAG:-}" ]; then
        run "$d/diag/initial/$set" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
          $(data "$set") $eval_args probe=all init=initial
      fi
    done
  done
done
