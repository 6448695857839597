"""Markdown tables of the scale study (issue 14 part 3) from the metrics.json files under RUNS.

Layout (experiments/scale/*.sh): RUNS/baselines/<set>/{trivial,kmeans}; RUNS/<study>/<train set>/<method> for
study = compute | datascale, each with its final metrics.json (last weights, scored on the training set) and
eval/step<N>/<eval set>/{unsup,kmeans_L}/metrics.json (a kept checkpoint scored on one set: the method's own
clusters, and K-means on its features L). mIoU is the primary figure, PA beside it; the trivial one-cluster
baseline and K-means on RGB of the eval set are on every row. Time = wall clock from the run's start to the
checkpoint's file time (training only; the machine was shared, see README).

Usage: python experiments/scale/summarize.py [RUNS]   (default /work/exp_runs/scale)
"""

from __future__ import annotations

import json
from pathlib import Path

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/summarize.py"
SIZES = {"coco_persons": 109, "human_seg": 290, "ccp_persons": 1004, "persons400": 399, "persons1400": 1403}
BASE_SETS = ["coco_persons", "human_seg", "ccp_persons", "persons400", "persons1400", "camvid", "coco_stuff27",
             "coco_stuff15"]  # fmt: skip


def _metrics(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def baselines(runs: Path) -> dict[str, dict[str, dict]]:
    """{set: {"trivial": metrics, "kmeans": metrics}} for the sets that have them."""
    out: dict = {}
    for p in sorted(runs.glob("baselines/*/*/metrics.json")):
        out.setdefault(p.parent.parent.name, {})[p.parent.name] = json.loads(p.read_text())
    return out


def points(runs: Path) -> list[dict]:
    """One row per (study, train set, method, step, eval set) with unsup / kmeans_L metrics and the time."""
    rows = []
    for run in sorted(p.parent for p in runs.glob("*/*/*/run_info.json")):
        study, train_set, method = run.parts[-3], run.parts[-2], run.parts[-1]
        info = json.loads((run / "run_info.json").read_text())
        for step_dir in sorted(run.glob("eval/step*")):
            step = int(step_dir.name.removeprefix("step"))
            ckpt = run / "checkpoints" / f"{step_dir.name}.ckpt"
            seconds = ckpt.stat().st_mtime - info["start_time"] if ckpt.is_file() else None
            for ev in sorted(step_dir.iterdir()):
                rows.append(dict(study=study, train=train_set, method=method, step=step, eval=ev.name,
                                 seconds=seconds, unsup=_metrics(ev / "unsup" / "metrics.json"),
                                 kmeans_L=_metrics(ev / "kmeans_L" / "metrics.json")))  # fmt: skip
    return rows


def final_runs(runs: Path) -> list[dict]:
    """Each training run's own final metrics.json (last weights, on its training set) and duration."""
    rows = []
    for run in sorted(p.parent for p in runs.glob("*/*/*/run_info.json")):
        info = json.loads((run / "run_info.json").read_text())
        rows.append(dict(study=run.parts[-3], train=run.parts[-2], method=run.parts[-1],
                         metrics=_metrics(run / "metrics.json"), seconds=info.get("duration_s"),
                         steps=_max_steps(run)))  # fmt: skip
    return rows


def _max_steps(run: Path) -> int | None:
    for arg in json.loads((run / "run_info.json").read_text()).get("overrides", []):
        if arg.startswith("trainer.max_steps="):
            return int(arg.split("=", 1)[1])
    return None


def _cell(m: dict | None) -> str:
    return "-" if m is None else f"**{m['miou']:.3f}** ({m['pa']:.3f})"


def _base(base: dict, ev: str) -> str:
    b = base.get(ev, {})
    return f"{_cell(b.get('kmeans'))} | {_cell(b.get('trivial'))}"


HEAD = "| unsup mIoU (PA) | K-means on L mIoU (PA) | K-means RGB mIoU (PA) | trivial mIoU (PA) |"


def steps_table(rows: list[dict], base: dict, study: str = "compute") -> str:
    lines = ["| eval set | train set | method | steps | time (s) " + HEAD, "|---|---|---|---|---|---|---|---|---|"]
    sel = [r for r in rows if r["study"] == study]
    for r in sorted(sel, key=lambda r: (r["eval"], SIZES.get(r["train"], 0), r["method"], r["step"])):
        t = "-" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['eval']} | {r['train']} | {r['method']} | {r['step']} | {t} | {_cell(r['unsup'])} | "
                     f"{_cell(r['kmeans_L'])} | {_base(base, r['eval'])} |")  # fmt: skip
    return "\n".join(lines)


def datascale_rows(rows: list[dict], step: int = 1500) -> list[dict]:
    """Step-`step` checkpoints of every training set: datascale runs and the compute runs (persons1400)."""
    return [r for r in rows if r["step"] == step and r["method"] in ("mi_paper", "iic")]


def datascale_table(rows: list[dict], base: dict, step: int = 1500) -> str:
    lines = ["| eval set | method | train set (images) | steps " + HEAD, "|---|---|---|---|---|---|---|---|"]
    sel = datascale_rows(rows, step)
    for r in sorted(sel, key=lambda r: (r["eval"], r["method"], SIZES.get(r["train"], 0))):
        lines.append(f"| {r['eval']} | {r['method']} | {r['train']} ({SIZES.get(r['train'], '?')}) | {r['step']} | "
                     f"{_cell(r['unsup'])} | {_cell(r['kmeans_L'])} | {_base(base, r['eval'])} |")  # fmt: skip
    return "\n".join(lines)


def final_table(rows: list[dict], base: dict) -> str:
    head = "| study | train set | method | steps | wall (s) | mIoU (PA), training set | K-means RGB | trivial |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = "running/stopped" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['study']} | {r['train']} | {r['method']} | {r['steps']} | {t} | {_cell(r['metrics'])} | "
                     f"{_base(base, r['train'])} |")  # fmt: skip
    return "\n".join(lines)


def baseline_table(base: dict) -> str:
    lines = ["| set | images | K-means RGB mIoU (PA) | trivial mIoU (PA) |", "|---|---|---|---|"]
    for s in BASE_SETS:
        if s in base:
            n = base[s].get("kmeans", base[s].get("trivial", {})).get("num_images", "?")
            lines.append(f"| {s} | {n} | {_base(base, s)} |")
    return "\n".join(lines)


def runs_argument(prog: str, doc: str, argv: list[str] | None) -> Path:
    """The RUNS folder of `PROG [RUNS]` (this script's and plot.py's command line), checked to exist."""
    ap = OneLineArgumentParser(prog=prog, description=doc.splitlines()[0])
    ap.add_argument(
        "runs",
        metavar="RUNS",
        type=existing_dir("pass the scale study's runs folder (experiments/scale/*.sh)"),
        nargs="?",
        default="/work/exp_runs/scale",  # a string, so argparse checks it like a given one
        help="the scale study's runs folder (default /work/exp_runs/scale)",
    )
    return Path(ap.parse_args(argv).runs)


def main(argv: list[str] | None = None) -> None:
    runs = runs_argument(PROG, __doc__, argv)
    base, rows = baselines(runs), points(runs)
    print("## Baselines (each set scored on its own images, 64 px centre crops)\n")
    print(baseline_table(base))
    print("\n## Compute: trained on persons1400, mIoU vs steps\n")
    print(steps_table(rows, base))
    print("\n## Data scale: 1,500 steps, by number of training images\n")
    print(datascale_table(rows, base))
    print("\n## Data scale runs, every kept checkpoint\n")
    print(steps_table(rows, base, "datascale"))
    print("\n## Training runs (final weights scored on their own training set)\n")
    print(final_table(final_runs(runs), base))


if __name__ == "__main__":
    main()
