#!/usr/bin/env bash
# As run on the lent NVIDIA H200 (see README.md). .gpu/data holds the four sets resized by shrink.py to a
# 128 px shorter side (coco_stuff15 = `python -m misseg.data.prepare stuff15-from-27` of coco_stuff27 first);
# .gpu/wheels holds hydra-core/omegaconf/antlr4 wheels (the GPU image has no Hydra). IIC runs were cut by the
# 300 s timeout of each dataset's chain: no IIC row at 1500 steps.
# GPU results study: per dataset, K-means (RGB), trivial K=1, MI paper-faithful and two views, IIC; 1500 steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
export WANDB_MODE=disabled PYTHONPATH=$PWD
python -m pip install -q --no-deps .gpu/wheels/*.whl 2>&1 | tail -1
data="experiment=folder data.resize_shorter=128 data.image_size=112 data.batch_size=32 data.num_workers=3"
train="trainer.enable_progress_bar=false trainer.accelerator=gpu trainer.max_steps=1500 trainer.max_epochs=100000 trainer.check_val_every_n_epoch=1000 report=false model.lr=1e-3"
one() {  # name K ignore
  name=$1; K=$2; ign=$3; d=/tmp/study/$name; mkdir -p $d
  python -m misseg.baselines.kmeans $data data.root=.gpu/data/$name kmeans.K=$K report=false hydra.run.dir=$d/kmeans > $d/kmeans.log 2>&1
  python -m misseg.baselines.kmeans $data data.root=.gpu/data/$name kmeans.K=1 matching=majority report=false hydra.run.dir=$d/trivial > $d/trivial.log 2>&1
  python -m misseg.train -m $data $train data.root=.gpu/data/$name model.K=$K model.ignore_in_loss=$ign model.P=256 \
    model.objective.views=1,2 model.objective.view_jitter=0.8 model.objective.view_hue=0.5 hydra.sweep.dir=$d/mi > $d/mi.log 2>&1
  python -m misseg.train $data $train model=iic data.root=.gpu/data/$name model.K=$K model.ignore_in_loss=$ign \
    hydra.run.dir=$d/iic > $d/iic.log 2>&1
}
s=$(date +%s)
export -f one; export data train
for a in "coco_persons 2 false" "human_seg 2 false" "camvid 11 false" "coco_stuff15 15 true"; do timeout 300 bash -c "one $a" & done; wait
echo "study took $(( $(date +%s) - s )) s"
python - <<'PY'
import json, glob, os, yaml
rows = []
for ds in ["coco_persons", "human_seg", "camvid", "coco_stuff15"]:
    for f in sorted(glob.glob(f"/tmp/study/{ds}/**/metrics.json", recursive=True)):
        run = os.path.dirname(f); m = json.load(open(f))
        ov = run.replace(f"/tmp/study/{ds}/", "")
        o = os.path.join(run, ".hydra", "overrides.yaml")
        if os.path.exists(o):
            ov += " " + " ".join(x for x in yaml.safe_load(open(o)) if x.startswith(("model.objective.views", "model.objective.in_image")))
        info = os.path.join(run, "run_info.json")
        t = json.load(open(info)).get("duration_s") if os.path.exists(info) else m.get("fit_seconds")
        csvf = os.path.join(run, "csv", "metrics.csv"); steps = ""
        if os.path.exists(csvf):
            import csv
            steps = max(int(r["step"]) for r in csv.DictReader(open(csvf)) if r.get("step"))
        rows.append(f"| {ds} | {ov} | {m['pa']:.3f} | {m['miou']:.3f} | {t} | {steps} |")
print("| dataset | run | PA | mIoU | time_s | steps |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
PY
for ds in coco_persons camvid; do grep -h -i -E "error|Traceback" /tmp/study/$ds/*.log | head -5; done
