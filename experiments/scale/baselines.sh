#!/usr/bin/env bash
# Step 2: the trivial one-cluster baseline and K-means on RGB on each of the 8 small folders.
# Usage: bash experiments/scale/baselines.sh   (RUNS=/work/exp_runs/scale by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
for set in coco_persons human_seg ccp_persons persons400 persons1400 camvid coco_stuff27 coco_stuff15; do
  run "$RUNS/baselines/$set/trivial" misseg.baselines.kmeans $(data $set) kmeans.K=1 matching=majority report=false
  run "$RUNS/baselines/$set/kmeans" misseg.baselines.kmeans $(data $set) report=false
done
