#!/usr/bin/env bash
# Section 13: two views on the frozen ImageNet network at 4x (pretrained_frozen.sh's `mi` with
# model.objective.views=2, lever_views.sh's jitter), ccp_persons, seeds 0-2, clusters only (NO_DIAG), then the
# K-means probe with restarts. Why: from scratch, two views lift MI's clusters on ccp_persons on 3 of 3 seeds; the
# frozen network is where L already holds the person (linear probe 0.806) and MI's clusters miss it (0.366).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/lever_views_frozen.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
W=$(weights_file)
export NO_DIAG=1
frozen="model/encoder=effnet_lite0_x4 model.encoder.weights=$W model.encoder.freeze=true"
train() { budget=$timm_budget lever ccp_persons 2 "$1" mi_views2_effnet4_frozen $frozen $views2; }
train 0 &
train 1
wait
train 2
bash experiments/scale/kmeans_restarts.sh mi_views2_effnet4_frozen ccp_persons
