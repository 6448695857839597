"""python -m misseg.bench [--device cpu|cuda] [--quick] [--out-dir DIR] [--data-root DIR]: benchmark sections.

Prints markdown tables as each section finishes and writes DIR/bench_<device>.md (BENCHMARKS.md-ready),
DIR/bench_<device>.json and DIR/scaling_<device>.png into a new directory (default logs/bench/<time>; an
existing one is refused, so committed results are never overwritten). Sizes differ by device: on a CPU the
paper setting is timed with a reduced batch and few rounds (the tables say exactly what was measured).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from misseg.bench import crf as crf_bench
from misseg.bench import data as data_bench
from misseg.bench import metric as metric_bench
from misseg.bench.train_step import (
    AXES,
    IMPLS,
    Setting,
    check_same_math,
    fmt_spread,
    interleaved,
    make_objective_step,
    make_step,
    plot_scaling,
    scaling,
    separated,
    spread,
)
from misseg.runs.errors import OneLineArgumentParser
from misseg.runs.provenance import available_cores

TARGETS = {"train": 3.0, "metric": 5.0, "data": 10.0}
TITLES = {"train": "Train step", "objective": "Objective", "scaling": "Scaling", "metric": "Metric",
          "data": "Data pipeline", "crf": "Dense CRF"}  # fmt: skip


def plan(device: str, quick: bool) -> dict:
    """What each section measures on this device. CPU sizes keep `make bench` near 10 min on 2 cores.

    "*_rounds" = (warm-up calls, timed rounds); every timed figure is a median over the rounds with its spread.
    """
    if device == "cuda":
        return {
            "train": [Setting(64, 128, 2048, 15), Setting(64, 128, 2048, 2), Setting(16, 64, 256, 15)],
            "train_rounds": (3, 10) if not quick else (2, 3),
            "fast": ["channels_last", "bf16", "compile"] if not quick else ["channels_last", "bf16"],
            "objective": [(64, 32, 2048, 15), (16, 16, 256, 15)],
            "objective_rounds": (3, 10),
            "scaling_base": Setting(64, 128, 2048, 15),
            "axes": {**AXES, "B": (16, 32, 64, 128)},
            "scaling_rounds": (2, 7) if not quick else (1, 3),
            "metric_batches": 12 if not quick else 3,
            "data_batches": 6,
            "crf": [(64, 64, 2), (64, 128, 15)],
            "crf_rounds": (1, 5),
        }
    if quick:  # seconds: a smoke run (tests/test_bench.py)
        return {
            "train": [Setting(2, 16, 8, 3)],
            "train_rounds": (1, 2),
            "fast": [],
            "objective": [(2, 4, 8, 3)],
            "objective_rounds": (1, 3),
            "scaling_base": Setting(2, 16, 8, 3),
            "axes": {"K": (2, 3, 4), "P": (8, 16), "side": (16, 32), "B": (2, 4)},
            "scaling_rounds": (1, 3),
            "metric_batches": 3,
            "data_batches": 1,
            "crf": [(4, 16, 2)],
            "crf_rounds": (1, 2),
        }
    return {
        "train": [Setting(8, 128, 2048, 15), Setting(8, 64, 256, 15)],
        "train_rounds": (1, 3),
        "fast": ["channels_last"],
        "objective": [(8, 32, 2048, 15), (8, 16, 256, 15)],
        "objective_rounds": (1, 5),
        "scaling_base": Setting(8, 64, 256, 8),
        "axes": {**AXES, "B": (4, 8, 16, 32)},
        "scaling_rounds": (1, 5),
        "metric_batches": 12,
        "data_batches": 3,
        "crf": [(64, 64, 2), (64, 128, 15)],
        "crf_rounds": (1, 5),
    }


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores_available": available_cores(), "torch": torch.__version__,
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


def compare(times: dict, a: str, b: str) -> str:
    """Median ratio b / a, or a flag when the two timings overlap (the spread exceeds the effect)."""
    ratio = spread(times[b])["median"] / spread(times[a])["median"]
    return f"{ratio:.2f}x" if separated(times[a], times[b]) else f"{ratio:.2f}x (noise: spreads overlap)"


def section_train(p: dict, device: torch.device) -> tuple[dict, str]:
    warmup, rounds = p["train_rounds"]
    diff = check_same_math(device)
    rows, results = [], []
    for s in p["train"]:
        times = interleaved({impl: make_step(s, impl, device) for impl in IMPLS}, warmup, rounds, device)
        med = {impl: spread(times[impl])["median"] for impl in IMPLS}
        results.append({"setting": s.label(), **s.__dict__, "times": times, "median_s": med,
                        "misseg_images_per_s": s.B / med["misseg"],
                        "vs_einsum": med["einsum"] / med["misseg"], "vs_naive": med["naive"] / med["misseg"],
                        "separated_einsum": separated(times["misseg"], times["einsum"]),
                        "separated_naive": separated(times["misseg"], times["naive"])})  # fmt: skip
        rows.append([s.label(), *(fmt_spread(times[i]) for i in IMPLS), f"{s.B / med['misseg']:.3g}",
                     compare(times, "misseg", "einsum"), compare(times, "misseg", "naive")])  # fmt: skip
    md = (f"Forward + backward + Adam, random input, Sobel on; {warmup} warm-up step(s) each, then {rounds} "
          "interleaved rounds (every implementation once per round, order rotating): median s/step (min-max). "
          "einsum = misseg's heads + the loss as one einsum per contraction; naive = a loop over the K heads and "
          f"negatives image by image. Largest |loss - loss_misseg| on a shared-weight batch: {diff:.1e}. "
          f"Speed-up target vs naive: >= {TARGETS['train']:g}x.\n\n")  # fmt: skip
    md += table(["setting", "misseg s", "einsum s", "naive s", "misseg img/s", "misseg vs einsum", "misseg vs naive"],
                rows)  # fmt: skip
    base = p["train"][0]
    fast_rows = []
    for opt in p["fast"]:
        try:
            fns = {"plain": make_step(base, "misseg", device), opt: make_step(base, "misseg", device, **{opt: True})}
            times = interleaved(fns, warmup + (1 if opt == "compile" else 0), rounds, device)
        except Exception as e:  # a fast path this machine cannot run is reported, not fatal
            fast_rows.append([opt, "failed", type(e).__name__, ""])
            continue
        results.append({"setting": base.label(), "option": opt, "times": times})
        fast_rows.append([opt, fmt_spread(times[opt]), fmt_spread(times["plain"]), compare(times, opt, "plain")])
    if fast_rows:
        md += f"\n\nFast paths on {base.label()} (misseg, interleaved with the plain fp32 step):\n\n"
        md += table(["option", "s/step", "plain s/step", "speed-up"], fast_rows)
    return {"rows": results, "loss_diff": diff}, md


def section_objective(p: dict, device: torch.device) -> tuple[dict, str]:
    warmup, rounds = p["objective_rounds"]
    rows, results = [], []
    for B, side, P, K in p["objective"]:
        fns = {impl: make_objective_step(B, side, P, K, impl, device) for impl in IMPLS}
        times = interleaved(fns, warmup, rounds, device)
        label = f"B={B} {side}x{side} P={P} K={K}"
        results.append({"setting": label, "times": times})
        rows.append([label, *(fmt_spread(times[i]) for i in IMPLS), compare(times, "misseg", "einsum"),
                     compare(times, "misseg", "naive")])  # fmt: skip
    md = (f"The loss alone (eq. 4.8-4.12, forward + backward) from fixed features L (B, P, U, V) and H (B, K, P); "
          f"{warmup} warm-up call(s), {rounds} interleaved rounds: median s (min-max).\n\n")  # fmt: skip
    md += table(["features", "misseg s", "einsum s", "naive s", "misseg vs einsum", "misseg vs naive"], rows)
    return {"rows": results}, md


def section_scaling(p: dict, device: torch.device, out_dir: Path) -> tuple[dict, str]:
    warmup, rounds = p["scaling_rounds"]
    res = scaling(p["scaling_base"], p["axes"], device, warmup, rounds)
    png = out_dir / f"scaling_{device.type}.png"
    plot_scaling(res, str(png), f"misseg train step vs one axis, base {res['base']} ({device.type})")
    res["plot"] = str(png)
    rows = []
    for axis, d in res["axes"].items():
        cells = [f"{r['value']}: {fmt_spread(r['times'])}{'' if r.get('separable', True) else ' *'}" for r in d["rows"]]
        exponent = f"{d['exponent']:.2f} ({d['exponent_min']:.2f} to {d['exponent_max']:.2f})"
        rows.append([axis, ", ".join(cells), exponent if d["trusted"] else f"{exponent}: noise, not a result"])
    md = (f"misseg step time (s) varying one axis from base {res['base']}; every setting once per round, "
          f"{warmup} warm-up + {rounds} interleaved rounds: median (min-max). * = overlaps the previous value "
          "(the difference is within the spread). Exponent = least-squares slope of log(median time) vs "
          "log(value), with its range over per-round fits; when that range is wider than |exponent| the exponent "
          f"is noise, not a result. Plot: `{png.name}` (whiskers = min-max).\n\n")  # fmt: skip
    return res, md + table(["axis", "value: median s (min-max)", "exponent (per-round range)"], rows)


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


def section_crf(p: dict, root: Path) -> tuple[dict, str]:
    from misseg.diagnostics.crf import crf_available

    if not crf_available():
        why = "pydensecrf2 is not installed (pip install 'misseg[crf]')"
        return {"skipped": why}, f"skipped: {why}"
    warmup, rounds = p["crf_rounds"]
    cores = available_cores()
    workers = [0, max(cores, 2)]
    photos = (root / "images").is_dir() and crf_bench.photo_files(root)
    rows, results = [], crf_bench.bench_crf(p["crf"], workers, warmup, rounds, root if photos else None)
    for r in results:
        t = r["times"]
        r["times"] = {str(n): t[n] for n in workers}  # JSON keys are strings: the same keys in memory and on disk
        med = {n: spread(t[n])["median"] for n in workers}
        r["speedup"] = med[0] / med[workers[1]]
        rows.append([f"B={r['batch']} {r['side']}x{r['side']} K={r['K']}", fmt_spread(t[0]), fmt_spread(t[workers[1]]),
                     f"{1000 * med[0] / r['batch']:.3g}", compare(t, workers[1], 0), r["same_output"]])  # fmt: skip
    images = (
        f"the first photos of `{root}/images` (shorter side resized, centre crop) with a smooth random prediction"
        if photos
        else "a block scene with a noisy prediction of its blocks"
    )
    md = (
        f"`misseg.diagnostics.crf.dense_crf_batch` (pydensecrf2, STEGO's 10 mean-field iterations) on {images}; "
        f"{warmup} warm-up call(s), then {rounds} interleaved rounds: median s per batch (min-max), in this process "
        f"(`crf_workers=0`) and in {workers[1]} worker processes (`crf_workers={workers[1]}`: the available cores, "
        "at least 2; the pool is started, and the outputs compared, before the timing).\n\n"
    )
    md += table(["batch", "serial s", f"{workers[1]} workers s", "serial ms/image", "speed-up", "same output"], rows)
    return {"workers": workers, "rows": results, "images": str(root) if photos else "block scene"}, md


def main(argv: list[str] | None = None) -> dict:
    ap = OneLineArgumentParser(prog="python -m misseg.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="fewer/smaller measurements (smoke run)")
    ap.add_argument(
        "--out-dir", default=None, help="a new directory for the .md, .json, .png (default logs/bench/<time>)"
    )
    ap.add_argument("--sections", default="train,objective,scaling,metric,data,crf")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--data-root", default=None, help="folder dataset for the data section")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no CUDA device visible to torch; run on a GPU machine or use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out_dir = Path(args.out_dir or f"logs/bench/{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    if out_dir.exists():  # results are never overwritten, committed ones (bench/results) included
        fail(f"--out-dir {out_dir} exists: pass a new directory (or leave --out-dir unset for logs/bench/<time>)")
    sections = args.sections.split(",")
    unknown = [n for n in sections if n not in TITLES]
    if unknown:
        fail(f"--sections: unknown section {unknown[0]!r}; valid: {','.join(TITLES)}")
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo / "shared/data/coco_stuff27", repo.parent / "shared/data/coco_stuff27"]
    root = Path(args.data_root) if args.data_root else next((c for c in candidates if c.is_dir()), candidates[-1])
    if args.data_root and "data" in sections and not (root / "images").is_dir():
        fail(f"--data-root {root}: no images/ folder there; pass a folder dataset (DIR/images, DIR/masks)")
    out_dir.mkdir(parents=True)
    p = plan(args.device, args.quick)
    info = machine_info(device)
    t0 = time.perf_counter()
    cmd = "python -m misseg.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    md = [f"### misseg benchmark ({args.device}{', quick' if args.quick else ''})", "",
          f"Command: `{cmd.strip()}`", "", table(list(info), [list(info.values())])]  # fmt: skip
    print("\n".join(md), flush=True)
    result: dict = {"machine": info, "command": cmd.strip(), "sections": {}}
    for name in sections:
        t = time.perf_counter()
        if name == "train":
            res, text = section_train(p, device)
        elif name == "objective":
            res, text = section_objective(p, device)
        elif name == "scaling":
            res, text = section_scaling(p, device, out_dir)
        elif name == "metric":
            res, text = section_metric(p, device)
        elif name == "data":
            if not (root / "images").is_dir():
                print(f"\n#### Data pipeline\n\nskipped: {root}/images not found (pass --data-root)", flush=True)
                continue
            res, text = section_data(p, device, root)
        elif name == "crf":
            res, text = section_crf(p, root)
        res["seconds"] = time.perf_counter() - t
        result["sections"][name] = res
        block = f"\n#### {TITLES[name]} ({res['seconds']:.0f} s)\n\n{text}"
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


def fail(message: str) -> None:
    """The house contract for bad input: one line on stderr, exit status 2, nothing created."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def write(out_dir: Path, device: str, md: list[str], result: dict) -> None:
    (out_dir / f"bench_{device}.md").write_text("\n".join(md) + "\n")
    (out_dir / f"bench_{device}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
