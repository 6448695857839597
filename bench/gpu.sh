#!/usr/bin/env bash
# GPU benchmark, one command (< 6 min on an H100/H200): train step (paper setting, misseg vs naive,
# channels_last / bf16 / compile), objective, scaling and metric sections; markdown + JSON + PNG land in
# $OUT/results (a new directory: the benchmark refuses an existing one).
# Run from the repository root: bash bench/gpu.sh   (the data section needs shared/data/coco_stuff27;
# it is included when that folder is present next to or inside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/bench/gpu-$(date +%Y-%m-%d_%H-%M-%S)}
mkdir -p "$OUT"
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
export WANDB_MODE=disabled PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv" || true
sections=train,objective,scaling,metric
if [ -d shared/data/coco_stuff27/images ] || [ -d ../shared/data/coco_stuff27/images ]; then sections=$sections,data; fi
timeout 330 "$PY" -m misseg.bench --device cuda --out-dir "$OUT/results" --sections "$sections" "$@" 2>&1 | tee "$OUT/bench_cuda.log"
