#!/usr/bin/env bash
# Section 15: K-means (10 restarts) on the frozen ImageNet network's own map at 4x, before any 1x1 projection to P
# (evaluate probe_layer=body), on each SET, seeds 0-2 (each seed's probe split and K-means seeding: the same splits
# as every other "K-means on L" number of sections 12-14). No MI, no training: the reference a competent researcher
# with this network runs first. Why: K-means on the frozen network's L depends on the projection's draw (untrained:
# COCO-Persons 0.357-0.549, ccp_persons 0.357-0.731, sections 13-14), so "MI's training made L better for K-means"
# needs the figure no draw or training moves. The checkpoint is only a carrier of the architecture and K: a 1-step
# run of the frozen network (the body is the weights file's in every run; tests/test_backbone.py checks that the
# body probe does not depend on the projection). Written to $RUNS/bodyref/SET/{carrier,seedS} (PROBE=linear: seedS_linear).
# Table: python experiments/scale/kmeans_restarts_table.py (column "K-means on the body").
# PROBE=linear (section 51): the linear probe on the same body map instead, into $RUNS/bodyref/SET/seedS_linear: the
# ceiling of every probe on L of a frozen-body run (L is a linear map of this body map, so a probe on L is a probe
# on the body restricted to P directions).
# Usage: [PROBE=kmeans|linear] WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/body_kmeans.sh SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
[ $# -ge 1 ] || { echo "usage: WEIGHTS=... bash experiments/scale/body_kmeans.sh SET [SET ...]" >&2; exit 2; }
frozen=$(frozen_x4)
check_sets "$@"
case ${PROBE:=kmeans} in
  kmeans) probe_args="probe=kmeans probe_kmeans_restarts=10" suffix="" ;;
  linear) probe_args="probe=linear" suffix="_linear" ;;
  *) echo "PROBE: '$PROBE' is not a probe; use kmeans or linear" >&2; exit 2 ;;
esac
for set in "$@"; do
  K=$(wc -l < "$SMALL/$set/classes.txt")
  d=$RUNS/bodyref/$set
  run "$d/carrier" misseg.train $(data "$set") $timm_budget trainer.max_steps=1 report=false \
    model.K="$K" $frozen
  for seed in 0 1 2; do
    SEED=$seed run "$d/seed$seed$suffix" misseg.evaluate ckpt_path="$d/carrier/checkpoints/last.ckpt" \
      $(SEED=$seed data "$set") $eval_args $probe_args probe_layer=body
  done
done
