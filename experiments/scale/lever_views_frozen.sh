#!/usr/bin/env bash
# Section 13: two views on the frozen ImageNet network at 4x (pretrained_frozen.sh's `mi` with
# model.objective.views=2, lever_views.sh's jitter), seeds 0-2, clusters only (NO_DIAG), then the K-means probe
# with restarts. Why: from scratch, two views lift MI's clusters on ccp_persons on 3 of 3 seeds; the frozen network
# is where L already holds the person (linear probe 0.806) and MI's clusters miss it (0.366).
# SETS: the sets to train on, each scored on its own images (default ccp_persons, the eighth session's; the ninth
# session ran coco_persons, whose one-view runs are section 12's).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth [SETS="ccp_persons coco_persons"]
#        bash experiments/scale/lever_views_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
frozen=$(frozen_x4)
sets=${SETS:-ccp_persons}
check_sets $sets
export NO_DIAG=1
for set in $sets; do
  K=$(wc -l < "$SMALL/$set/classes.txt")
  train() { budget=$timm_budget lever "$set" "$K" "$1" mi_views2_effnet4_frozen $frozen $views2; }
  train 0 &
  train 1
  wait
  train 2
done
bash experiments/scale/kmeans_restarts.sh mi_views2_effnet4_frozen $sets
