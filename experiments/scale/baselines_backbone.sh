#!/usr/bin/env bash
# Section 15: K-means on the frozen ImageNet network's map (misseg.baselines.kmeans kmeans.features=backbone: the
# EfficientNet-Lite0 read at 4x, no projection, 10 restarts), fitted and scored on every image of each set, the
# protocol of baselines.sh's K-means RGB: the reference any method on this network must beat; and the same with its
# maps refined by the dense CRF (section 38: the reference of a "+ CRF" row on this network).
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/baselines_backbone.sh [SET ...]
#        (default: the five sets of the study)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
W=$(weights_file)
sets=${*:-ccp_persons human_seg coco_persons camvid coco_stuff15}
check_sets $sets
for set in $sets; do
  run "$RUNS/baselines/$set/kmeans_backbone" misseg.baselines.kmeans $(data $set) report=false \
    kmeans.features=backbone kmeans.backbone.weights="$W"
  run "$RUNS/baselines/$set/kmeans_backbone_crf" misseg.baselines.kmeans $(data $set) report=false \
    kmeans.features=backbone kmeans.backbone.weights="$W" crf=true
done
