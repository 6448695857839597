#!/usr/bin/env bash
# Section 13: two views (model.objective.views=2, lever_views.sh's jitter) on the three sets it was not run on at
# this budget (COCO-Persons, Human-Seg, COCO-Stuff-15; seeds 0-2, clusters only: NO_DIAG). Why: on ccp_persons it
# lifts MI on 3 of 3 seeds (lever_proto_views.sh), on CamVid it loses on 3 of 3 (lever_views.sh); a lever is kept
# only where it survives the seeds, so it needs every set. Then the K-means probe with restarts on the new runs.
# Usage: bash experiments/scale/lever_views_sets.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
export NO_DIAG=1
for seed in 0 1 2; do
  lever coco_persons 2 "$seed" mi_views2 $views2 &
  lever human_seg 2 "$seed" mi_views2 $views2
  wait
done
# stuff-15 as every MI run on it: thing pixels get no gradient (model.ignore_in_loss=true)
stuff() { lever coco_stuff15 15 "$1" mi_views2 $views2 model.ignore_in_loss=true; }
stuff 0 &
stuff 1
wait
stuff 2
bash experiments/scale/kmeans_restarts.sh mi_views2 coco_persons human_seg coco_stuff15
