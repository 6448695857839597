#!/usr/bin/env bash
# Step 2: the trivial one-cluster baseline and K-means on RGB on each of the 8 small folders, and K-means RGB with
# its maps refined by the dense CRF (section 38: the reference of a method's "+ CRF" row).
# Usage: [SETS="camvid coco_stuff15"] bash experiments/scale/baselines.sh   (RUNS=/work/exp_runs/scale by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
sets=${SETS:-coco_persons human_seg ccp_persons persons400 persons1400 camvid coco_stuff27 coco_stuff15}
check_sets $sets
for set in $sets; do
  run "$RUNS/baselines/$set/trivial" misseg.baselines.kmeans $(data $set) kmeans.K=1 matching=majority report=false
  run "$RUNS/baselines/$set/kmeans" misseg.baselines.kmeans $(data $set) report=false
  run "$RUNS/baselines/$set/kmeans_crf" misseg.baselines.kmeans $(data $set) report=false crf=true
done
