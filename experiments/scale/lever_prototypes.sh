#!/usr/bin/env bash
# Section 12: prototype heads (model/heads=prototypes: H_k = one learned vector per class, the same for every
# image). Why: on the frozen ImageNet network eq. 4.12 is met almost without the segmentation (shortcut.py: bound
# -0.593 with the model's p', -0.661 with p' uniform; 3 seeds) because the image-level F_k carry a code of their
# image; with prototypes S_ij(x) depends on x only through p'_ij(x), so only the segmentation raises the bound.
# The scratch thesis encoder (scale budget) on ccp_persons, seeds 0-2, clusters only (NO_DIAG), then the frozen
# ImageNet network at 4x (pretrained_frozen.sh METHODS=mi_proto), then the K-means probe with restarts on both.
# Usage: WEIGHTS=/work/weights/tf_efficientnet_lite0.pth bash experiments/scale/lever_prototypes.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
W=$(weights_file)
export NO_DIAG=1
for seed in 0 1 2; do
  lever ccp_persons 2 "$seed" mi_proto model/heads=prototypes
done
WEIGHTS=$W METHODS=mi_proto bash experiments/scale/pretrained_frozen.sh
bash experiments/scale/kmeans_restarts.sh mi_proto ccp_persons
bash experiments/scale/kmeans_restarts.sh mi_proto_effnet4_frozen ccp_persons
