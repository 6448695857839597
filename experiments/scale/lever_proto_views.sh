#!/usr/bin/env bash
# Section 13: prototype heads + two views, a 2 x 2 on ccp_persons and CamVid (scratch thesis encoder, scale budget,
# seeds 0-2, clusters only: NO_DIAG). Why: section 12 took away the image code (prototype heads), after which only
# p' can raise eq. 4.12, but any balanced partition the network computes confidently then does, and the one it
# picks is no closer to the classes. IIC, the one method here that beats MI at this budget, picks its partition by
# invariance: the cluster of a pixel must survive colour jitter and a flip. Two views (positives pair L of one
# view with S of the other) ask the same of MI, but with image-level heads the image code satisfies them (the first
# diagnosis's two views on CamVid, lever_views.sh: rejected). With prototype heads it cannot: S of the other view
# then depends on that view only through its p'.
# Cells: mi (exists), mi_views2 (CamVid exists: lever_views.sh), mi_proto (ccp exists: lever_prototypes.sh),
# mi_proto_views2 (new). Same jitter as lever_views.sh's. Then the K-means probe with restarts on the new runs.
# Usage: bash experiments/scale/lever_proto_views.sh   (two runs at a time, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
export NO_DIAG=1
for seed in 0 1 2; do
  lever ccp_persons 2 "$seed" mi_views2 $views2 &
  lever ccp_persons 2 "$seed" mi_proto_views2 model/heads=prototypes $views2
  wait
  lever camvid 11 "$seed" mi_proto model/heads=prototypes &
  lever camvid 11 "$seed" mi_proto_views2 model/heads=prototypes $views2
  wait
done
for name in mi_views2 mi_proto_views2; do bash experiments/scale/kmeans_restarts.sh "$name" ccp_persons; done
for name in mi_proto mi_proto_views2; do bash experiments/scale/kmeans_restarts.sh "$name" camvid; done
