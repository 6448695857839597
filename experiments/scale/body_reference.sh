#!/usr/bin/env bash
# Section 15: the K-means probe (10 restarts) on the frozen body's own map, before the 1x1 projection to P
# (evaluate probe_layer=body), for each seed of the run NAME on each SET, on that seed's probe split. Why: K-means on
# the frozen network's L depends on the projection's draw (untrained: COCO-Persons 0.357-0.549, ccp_persons
# 0.357-0.731, sections 13-14); the body's map is the reference no draw or training moves, so "MI's training made
# L better for K-means" is read against it. Only runs whose body is frozen: the body of a trained one is not the
# initial network's. Written to RUN/diag/restarts/body/SET (nothing earlier is overwritten).
# Table: python experiments/scale/kmeans_restarts_table.py (column "body").
# Usage: bash experiments/scale/body_reference.sh NAME SET [SET ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scale/common.sh
[ $# -ge 2 ] || { echo "usage: bash experiments/scale/body_reference.sh NAME SET [SET ...]" >&2; exit 2; }
name=$1; shift
check_sets "$@"
body() {  # body SET SEED RUN
  local set=$1 seed=$2 d=$3
  grep -Eq '^ +freeze: true' "$d/config_resolved.yaml" || { echo "skip: $d (its body is not frozen)"; return 0; }
  SEED=$seed run "$d/diag/restarts/body/$set" misseg.evaluate ckpt_path="$d/checkpoints/step00450.ckpt" \
    $(SEED=$seed data "$set") $eval_args probe=kmeans probe_kmeans_restarts=10 probe_layer=body
}
each_checkpoint "$name" body "$@"
