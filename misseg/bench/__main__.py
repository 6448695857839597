"""python -m misseg.bench [--device cpu|cuda] [--quick] [--out-dir DIR]: four benchmark sections.

Prints markdown tables as each section finishes and writes DIR/bench_<device>.md (BENCHMARKS.md-ready),
DIR/bench_<device>.json and DIR/scaling_<device>.png. Sizes differ by device: on a CPU the paper setting
is timed with a reduced batch and few steps (the tables say exactly what was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from misseg.bench import data as data_bench
from misseg.bench import metric as metric_bench
from misseg.bench.train_step import Setting, bench_step, check_same_math, plot_scaling, scaling

TARGETS = {"train": 3.0, "metric": 5.0, "data": 10.0}


def plan(device: str, quick: bool) -> dict:
    """What each section measures on this device. CPU sizes keep `make bench` under 10 min on 2 cores."""
    if device == "cuda":
        return {
            "train": [Setting(64, 128, 2048, 15), Setting(64, 128, 2048, 2), Setting(16, 64, 256, 15)],
            "train_steps": (3, 10) if not quick else (2, 3),
            "fast": ["channels_last", "bf16", "compile"] if not quick else ["channels_last", "bf16"],
            "scaling_base": Setting(64, 128, 2048, 15),
            "batches": (16, 32, 64, 128),
            "scaling_steps": (2, 5) if not quick else (1, 2),
            "metric_batches": 12 if not quick else 3,
            "data_batches": 6,
        }
    return {
        "train": [Setting(8, 128, 2048, 15), Setting(8, 128, 2048, 2), Setting(8, 64, 256, 15)],
        "train_steps": (1, 1) if not quick else (1, 1),
        "fast": ["channels_last"],
        "scaling_base": Setting(8, 64, 256, 8) if not quick else Setting(4, 32, 128, 4),
        "batches": (4, 8, 16, 32),
        "scaling_steps": (1, 3) if not quick else (1, 1),
        "metric_batches": 12 if not quick else 3,
        "data_batches": 3 if not quick else 1,
    }


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores_available": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_avg_start": os.getloadavg()[0]}  # fmt: skip
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def table(headers: list[str], rows: list[list]) -> str:
    fmt = [f"| {' | '.join(headers)} |", "|" + "---|" * len(headers)]
    for r in rows:
        fmt.append("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in r) + " |")
    return "\n".join(fmt)


def verdict(value: float, target: float) -> str:
    return f"{value:.2f}x ({'met' if value >= target else 'missed'}, target >= {target:g}x)"


def section_train(p: dict, device: torch.device) -> tuple[dict, str]:
    warmup, steps = p["train_steps"]
    diff = check_same_math(device)
    rows, results = [], []
    for s in p["train"]:
        pair = {impl: bench_step(s, impl, device, warmup, steps) for impl in ("misseg", "naive")}
        ratio = pair["naive"]["step_s"] / pair["misseg"]["step_s"]
        results += [pair["misseg"], pair["naive"], {"setting": s.label(), "ratio": ratio}]
        rows.append([s.label(), pair["misseg"]["step_s"], pair["misseg"]["images_per_s"], pair["naive"]["step_s"],
                     pair["naive"]["images_per_s"], verdict(ratio, TARGETS["train"])])  # fmt: skip
    md = (f"Forward + backward + Adam, random input, Sobel on, {warmup} warm-up step(s) then the mean of "
          f"{steps} timed step(s). |loss_misseg - loss_naive| on a shared-weight batch: {diff:.1e}.\n\n")  # fmt: skip
    md += table(["setting", "misseg s/step", "misseg img/s", "naive s/step", "naive img/s", "speed-up"], rows)
    fast_rows = []
    base = p["train"][0]
    ref = next(r for r in results if r.get("impl") == "misseg" and r["setting"] == base.label())
    for opt in p["fast"]:
        try:
            r = bench_step(base, "misseg", device, warmup + (1 if opt == "compile" else 0), steps, **{opt: True})
        except Exception as e:  # a fast path this machine cannot run is reported, not fatal
            fast_rows.append([opt, "failed", type(e).__name__, ""])
            continue
        results.append(r)
        fast_rows.append([opt, r["step_s"], r["images_per_s"], f"{ref['step_s'] / r['step_s']:.2f}x"])
    if fast_rows:
        md += f"\n\nFast paths on {base.label()} (misseg, vs the plain fp32 row above):\n\n"
        md += table(["option", "s/step", "img/s", "speed-up"], fast_rows)
    return {"rows": results, "loss_diff": diff}, md


def section_scaling(p: dict, device: torch.device, out_dir: Path) -> tuple[dict, str]:
    warmup, steps = p["scaling_steps"]
    res = scaling(p["scaling_base"], p["batches"], device, warmup, steps)
    png = out_dir / f"scaling_{device.type}.png"
    plot_scaling(res, str(png), f"misseg train step vs one axis, base {res['base']} ({device.type})")
    res["plot"] = str(png)
    rows = [[axis, ", ".join(f"{r['value']}: {r['step_s']:.3g}" for r in d["rows"]), f"{d['exponent']:.2f}"]
            for axis, d in res["axes"].items()]  # fmt: skip
    md = (f"misseg step time (s) varying one axis from base {res['base']}, {warmup} warm-up + fastest of {steps} "
          f"step(s); exponent = least-squares slope of log(time) vs log(value). Plot: `{png.name}`.\n\n")  # fmt: skip
    return res, md + table(["axis", "value: s/step", "exponent"], rows)


def section_metric(p: dict, device: torch.device) -> tuple[dict, str]:
    n = p["metric_batches"]
    dev = device.type
    runs = [metric_bench.measure("misseg", b, dev) for b in (max(1, n // 4), n)]
    runs += [metric_bench.measure("numpy", b, "cpu") for b in (max(1, n // 4), n)]
    runs.append(metric_bench.measure("iic", 1, "cpu"))
    full = {r["impl"]: r for r in runs if r["pixels"] == n * 64 * 256 * 256 or r["impl"] == "iic"}
    rows = [[r["impl"], r["device"], r["pixels"] / 1e6, r["pixels_per_s"] / 1e6, r["host_peak_extra_mib"],
             r.get("device_peak_mib", "-")] for r in runs]  # fmt: skip
    md = (
        "Confusion matrix + Hungarian matching, K = 27 clusters vs 27 classes, 10% ignore pixels, updates of "
        "64 x 256 x 256. misseg = HungarianSegmentationMetric (streaming bincount); numpy = keep every pixel on "
        "the host, one bincount at the end (PiCIE-style, sklearn-free); iic = IIC's per-(cluster, class) vote "
        "loop over kept pixels, timed on 4.2M pixels (its cost is linear in pixels). Peak = extra peak RSS "
        "(VmHWM reset after building the inputs).\n\n"
    )
    md += table(["impl", "device", "Mpixels", "Mpixels/s", "host peak MiB", "device peak MiB"], rows)
    speed = full["misseg"]["pixels_per_s"] / full["numpy"]["pixels_per_s"]
    md += (f"\n\nmisseg vs numpy: {verdict(speed, TARGETS['metric'])}; vs iic: "
           f"{full['misseg']['pixels_per_s'] / full['iic']['pixels_per_s']:.0f}x.")  # fmt: skip
    return {"rows": runs, "speedup_vs_numpy": speed}, md


def section_data(p: dict, device: torch.device, root: Path) -> tuple[dict, str]:
    res = data_bench.bench_data(root, 128, 32, p["data_batches"], (0, 2), device)
    rows = [[r["path"], r["num_workers"], r["images_per_s"]] for r in res["rows"]]
    md = (f"`{root}` ({'real COCO JPEGs' if 'coco' in str(root) else 'folder data'}), 128 px random crop, flip, "
          f"colour jitter, normalise; batch 32, images/s over {p['data_batches']} batch(es) after the first; "
          f"batches moved to `{device.type}`.\n\n")  # fmt: skip
    md += table(["path", "num_workers", "images/s"], rows)
    for w in (0, 2):
        jpeg = next(r["images_per_s"] for r in res["rows"] if r["num_workers"] == w and r["path"].startswith("jpeg"))
        best = max(r["images_per_s"] for r in res["rows"] if r["num_workers"] == w and not r["path"].startswith("jpeg"))
        res[f"speedup_workers{w}"] = best / jpeg
        md += f"\n\nnum_workers={w}: fastest cached path vs JPEG {verdict(best / jpeg, TARGETS['data'])}"
        wired = [r["images_per_s"] for r in res["rows"] if r["num_workers"] == w and "on_device" in r["path"]]
        if wired:  # the path a training run takes with data.cache=true data.augment.on_device=true
            res[f"speedup_on_device_workers{w}"] = wired[0] / jpeg
            md += f"; the training path (data.augment.on_device) vs JPEG {wired[0] / jpeg:.1f}x"
    for note in res["notes"]:
        md += f"\n\nNote: {note}."
    return res, md


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m misseg.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="fewer/smaller measurements (smoke run)")
    ap.add_argument("--out-dir", default="bench/results", help="where the .md, .json and .png go")
    ap.add_argument("--sections", default="train,scaling,metric,data")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--data-root", default=None, help="folder dataset for the data section")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device visible to torch")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo / "shared/data/coco_stuff27", repo.parent / "shared/data/coco_stuff27"]
    root = Path(args.data_root) if args.data_root else next((c for c in candidates if c.is_dir()), candidates[-1])
    p = plan(args.device, args.quick)
    info = machine_info(device)
    t0 = time.perf_counter()
    cmd = "python -m misseg.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    md = [f"### misseg benchmark ({args.device}{', quick' if args.quick else ''})", "",
          f"Command: `{cmd.strip()}`", "", table(list(info), [list(info.values())])]  # fmt: skip
    print("\n".join(md), flush=True)
    result: dict = {"machine": info, "command": cmd.strip(), "sections": {}}
    titles = {"train": "Train step", "scaling": "Scaling", "metric": "Metric", "data": "Data pipeline"}
    for name in args.sections.split(","):
        t = time.perf_counter()
        if name == "train":
            res, text = section_train(p, device)
        elif name == "scaling":
            res, text = section_scaling(p, device, out_dir)
        elif name == "metric":
            res, text = section_metric(p, device)
        elif name == "data":
            if not (root / "images").is_dir():
                print(f"\n#### Data pipeline\n\nskipped: {root}/images not found (pass --data-root)", flush=True)
                continue
            res, text = section_data(p, device, root)
        else:
            ap.error(f"--sections: unknown section {name!r} (train, scaling, metric, data)")
        res["seconds"] = time.perf_counter() - t
        result["sections"][name] = res
        block = f"\n#### {titles[name]} ({res['seconds']:.0f} s)\n\n{text}"
        print(block, flush=True)
        md.append(block)
        write(out_dir, args.device, md, result)  # after every section: a timed-out run keeps what it measured
    info["load_avg_end"] = os.getloadavg()[0]
    info["total_s"] = time.perf_counter() - t0
    md.append(f"\nTotal {info['total_s']:.0f} s; 1-min load average {info['load_avg_start']:.1f} at start, "
              f"{info['load_avg_end']:.1f} at end ({info['cores_available']} cores).")  # fmt: skip
    print(md[-1], flush=True)
    write(out_dir, args.device, md, result)
    return result


def write(out_dir: Path, device: str, md: list[str], result: dict) -> None:
    (out_dir / f"bench_{device}.md").write_text("\n".join(md) + "\n")
    (out_dir / f"bench_{device}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
