"""Table of a lever study: per set and run name, seeds' clusters / K-means on L / linear probe mIoU, and the
random-init probe, from RUNS/small/SET/seedS/NAME/diag (lever_*.sh). Mean +- std over the seeds found.

Usage: python experiments/scale/levers_table.py RUNS_DIR SET [SET ...] [--names mi,mi_shuffled] [--agreement]
       [--study small1500]   (RUNS_DIR's subfolder: small = the 450-step runs, small1500 = the 1,500-step ones)
       [--seeds 0,1,2]       (the seeds averaged; default 0-2, the study's three)
       [--probe-dir cosine]  (the probes of reprobe.sh: RUN/diag/cosine/...; default RUN/diag/...; a run whose
                              RUN/diag/... probes record that schedule already is read from there)
       [--random-init]       (a "random init" row per set: the first name's random-init reference, its clusters,
                              + CRF, K-means on L and linear probe, one per distinct seeded draw; crf_rest.sh
                              makes the CRF cell)
       [--body]              (a "body" row per set: the frozen ImageNet body's own probes before any projection,
                              RUNS_DIR/bodyref/SET/seedS_linear and seedS (body_kmeans.sh, PROBE=linear and
                              kmeans): the ceiling a linear probe on a frozen-body run's L reads a projection of)
       [--trained-on persons1400]  (runs trained on that set, RUNS_DIR/STUDY/persons1400/seedS/NAME, read on each SET
                              through their RUN/diag/step*/SET evaluations (crf_kept.sh's third ENTRIES word): the
                              clusters cell is that evaluation's, not the training set's metrics.json)
The "initial weights" column is the linear probe of RUN/diag/initial (crf_kept.sh INITIAL=true: the frozen body and
the seed's untrained projection), the probe target's reference for runs on a frozen pretrained body.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _agreement_keys import AVERAGED  # experiments/scale/_agreement_keys.py: agreement.py's own column names

from misseg.runs.errors import OneLineArgumentParser, existing_dir

PROG = "experiments/scale/levers_table.py"


def probe(path: Path) -> dict[str, float] | None:
    if not path.is_file():
        return None
    p = json.loads(path.read_text())["probe"]
    return {k: p[k]["miou"] for k in ("unsupervised", "kmeans", "linear") if k in p}


def cell(values: list[float], of: int | None = None) -> str:
    """Mean ± std of the values; "(n of N)" after it when only n of the row's N seeds have this figure (an
    evaluation still running or never run), so a mean over fewer seeds never reads as the row's."""
    if not values:
        return "-"
    text = f"{values[0]:.3f}" if len(values) == 1 else f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
    return text if of is None or len(values) == of else f"{text} ({len(values)} of {of})"


def col(rows: list, key: str, i: int = 1) -> list[float]:
    """One probe's mIoU over the seeds: i = 1 the trained checkpoint, 2 its random init, 4 its initial weights."""
    return [r[i][key] for r in rows if r[i] and key in r[i]]


def cells(line: str) -> list[str]:
    """The cells of a markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def agreement(runs: str, sets: list[str], names: list[str], study: str = "small", seeds=("0", "1", "2")) -> None:
    """Mean over the seeds of each run's agreement.md (experiments/scale/agreement.py)."""
    cols = AVERAGED
    print("| set | run | seeds | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 3) + "|")
    for s in sets:
        for name in names:
            found = []
            for f in sorted((Path(runs) / study / s).glob(f"seed*/{name}/agreement.md")):
                if f.parent.parent.name.removeprefix("seed") not in seeds:
                    continue
                lines = f.read_text().splitlines()
                rows = [x for x in lines if x.startswith("| /")]
                if rows:  # agreement.py's header names the cells of its row
                    found.append(dict(zip(cells(lines[0]), cells(rows[-1]), strict=True)))
            if found:
                # "-": a column some seed's agreement.md lacks (written before agreement.py had it)
                means = [f"{statistics.mean(float(r[c]) for r in found):.3f}" if all(c in r for r in found) else "-"
                         for c in cols]  # fmt: skip
                print(f"| {s} | {name} | {len(found)} | " + " | ".join(means) + " |")


def add_runs(ap: OneLineArgumentParser) -> None:
    """The RUNS_DIR positional of the scripts that read lever_*.sh's runs (this one and lever_images.py)."""
    ap.add_argument(
        "runs",
        metavar="RUNS_DIR",
        type=existing_dir("pass the runs folder of experiments/scale/lever_*.sh"),
        help="the scale study's runs folder (lever_*.sh's RUNS)",
    )


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_runs(ap)
    ap.add_argument("sets", metavar="SET", nargs="+", help="set names (RUNS_DIR/STUDY/SET)")
    ap.add_argument("--names", default="mi,mi_shuffled", help="comma-separated run names (default mi,mi_shuffled)")
    ap.add_argument("--agreement", action="store_true", help="the agreement.md means instead of the probes")
    ap.add_argument("--study", default="small", help="RUNS_DIR's subfolder (small, small1500)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds to average")
    ap.add_argument("--probe-dir", default="", help="read the probes from RUN/diag/PROBE_DIR (reprobe.sh: cosine)")
    ap.add_argument(
        "--random-init", action="store_true", help="a 'random init' row per set: the first name's diag/random(_crf)"
    )
    ap.add_argument("--body", action="store_true", help="a 'body' row per set: RUNS_DIR/bodyref/SET's own probes")
    ap.add_argument("--trained-on", metavar="SET", help="the runs' training set, when it is not the SET read")
    args = ap.parse_args(argv)
    study = Path(args.runs) / args.study
    if not study.is_dir():
        ap.error(f"--study {args.study}: no such directory {study}; pass the runs' subfolder (small, small1500)")
    seeds = tuple(args.seeds.split(","))
    if args.agreement and args.body:
        ap.error("--body adds a probe row; the --agreement table has none (run the two separately)")
    if args.agreement:
        return agreement(args.runs, args.sets, args.names.split(","), args.study, seeds)
    print(
        "| set | run | seeds | clusters (all images) | clusters + CRF (all images) | clusters (probe's test half) "
        "| K-means on L | linear probe "
        "| linear probe, random init | linear probe, initial weights | per seed: clusters (all images) |"
    )
    print("|---" * 11 + "|")
    names = args.names.split(",")
    for s in args.sets:
        if args.body:
            body_row(Path(args.runs) / "bodyref" / s, s, seeds)
        for name in names + (["random init"] if args.random_init else []):
            rows, seen, reference = [], set(), name == "random init"
            for seed_dir in sorted((Path(args.runs) / args.study / (args.trained_on or s)).glob("seed*")):
                if seed_dir.name.removeprefix("seed") in seeds:
                    run = seed_dir / (names[0] if reference else name)
                    rows += (
                        random_init(run, s, seen, args.probe_dir)
                        if reference
                        else gather(run, s, args.probe_dir, elsewhere=args.trained_on not in (None, s))
                    )
            if not rows:
                continue
            n = len(rows)
            print(
                f"| {s} | {name} | {n} | {cell([r[0] for r in rows])} "
                f"| {cell([r[3] for r in rows if r[3] is not None], n)} | {cell(col(rows, 'unsupervised'), n)} "
                f"| {cell(col(rows, 'kmeans'), n)} | {cell(col(rows, 'linear'), n)} "
                f"| {cell(col(rows, 'linear', 2), n)} | {cell(col(rows, 'linear', 4), n)} "
                f"| {', '.join(f'{r[0]:.3f}' for r in rows)} |"
            )


def body_row(ref: Path, s: str, seeds: tuple[str, ...]) -> None:
    """The frozen body's own probes on set s (body_kmeans.sh): the linear probe from seedS_linear, K-means from
    seedS, each seed's split the same as the runs' probes of that seed; no clusters (no method)."""
    by_seed = {
        x: p["linear"] for x in seeds if (p := probe(ref / f"seed{x}_linear" / "metrics.json")) and "linear" in p
    }
    linear = list(by_seed.values())
    kmeans = [p["kmeans"] for x in seeds if (p := probe(ref / f"seed{x}" / "metrics.json")) and "kmeans" in p]
    n = max(len(linear), len(kmeans))
    if n:
        per_seed = ", ".join(f"seed {x} {v:.3f}" for x, v in by_seed.items())
        print(f"| {s} | body (frozen, before the projection) | {n} | - | - | - | {cell(kmeans, n)} "
              f"| {cell(linear, n)} | - | - | linear probe: {per_seed} |")  # fmt: skip


def miou(path: Path) -> float | None:
    return json.loads(path.read_text())["miou"] if path.is_file() else None


def gather(run: Path, s: str, probe_dir: str = "", elsewhere: bool = False) -> list[tuple]:
    """A trained run's row: (clusters, its last step's probes, its random init's probes, clusters + CRF, its initial
    weights' probes); the probes
    from RUN/diag/PROBE_DIR (reprobe.sh's `cosine`: the converged probe), the CRF score from RUN/diag; without
    those probes (NO_DIAG) the probe and CRF cells are None, so the run still shows. `elsewhere`: the run was
    trained on another set, so its metrics.json is not set s's; the clusters are its last step's evaluation on s
    (all images), and a run never evaluated on s has no row."""
    diag = step_metrics(run / "diag" / probe_dir, s)
    if probe_dir and not diag and recorded_schedule(run / "diag", s) == probe_dir:
        probe_dir, diag = "", step_metrics(run / "diag", s)  # diagnosed under that probe already
    probes = run / "diag" / probe_dir
    if not (run / "metrics.json").is_file() or (elsewhere and not diag):
        return []
    if not diag:  # trained with NO_DIAG, or probed under another protocol only: its clusters, no probe cells
        return [(miou(run / "metrics.json"), None, None, None, None)]
    crf_file = run / "diag" / (diag[-1].parent.parent.name + "_crf") / s / "metrics.json"
    random = probe(probes / "random" / s / "metrics.json")
    initial = probe(run / "diag" / "initial" / s / "metrics.json")
    clusters = miou(diag[-1] if elsewhere else run / "metrics.json")
    return [(clusters, probe(diag[-1]), random, miou(crf_file), initial)]


def step_metrics(diag: Path, s: str) -> list[Path]:
    """DIAG's evaluations of the trained steps on set s (step*/s/metrics.json), the CRF ones left out, by step."""
    return sorted(f for f in diag.glob(f"step*/{s}/metrics.json") if "crf" not in f.parent.parent.name)


def recorded_schedule(diag: Path, s: str) -> str | None:
    """The linear probe's lr schedule that DIAG's step evaluations on set s record (metrics.json, since the
    converged probe), or None: runs diagnosed after that change need no reprobe.sh pass."""
    linear = (json.loads(f.read_text()).get("probe", {}).get("linear", {}) for f in step_metrics(diag, s))
    schedules = {p.get("schedule") for p in linear}
    return schedules.pop() if len(schedules) == 1 else None


def random_init(run: Path, s: str, seen: set[str], probe_dir: str = "") -> list[tuple]:
    """The random-init reference of a run (evaluate init=random: diag/random, + CRF: diag/random_crf), same shape;
    an init already in `seen` (the same seeded draw of the same architecture, e.g. diagnose.sh's seed 0 for every
    run) is counted once."""
    f = run / "diag" / probe_dir / "random" / s / "metrics.json"
    if not f.is_file():
        return []
    weights = json.loads(f.read_text()).get("weights", str(f))
    draw = weights.split(", architecture")[0]  # "random init (seed N)"
    if draw in seen:
        return []
    seen.add(draw)
    return [(miou(f), probe(f), probe(f), miou(run / "diag" / "random_crf" / s / "metrics.json"), None)]


if __name__ == "__main__":
    main()
