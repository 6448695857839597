"""Is the segmentation an optimum of the MI bound? Train the same network twice, same data, seed and steps:

- `learned`: the thesis's objective (p' = softmax_k(tau <L_ij, H_k>), eq. 4.8);
- `oracle`:  p' replaced by the ground-truth class fractions of each patch (the labels pooled to the U x V grid;
  ignored pixels leave the patch out), so S_ij = sum_k (class-k share of patch ij) H_k: the bound of a model whose
  clusters *are* the classes. A diagnostic only: it trains on labels, it is not a method.

If the learned run reaches a higher bound than the oracle run, the objective prefers its own (non-semantic)
partition to the classes, and more steps or data cannot be expected to move it towards them. Both bounds are
measured the same way at the end: eval mode, the set's 64 px centre crops in a seeded random order, batches of 16
(experiments/scale/shortcut.py), with each run's own p' (learned: the model's; oracle: the labels).

With `--correspondence W` both runs train on the correspondence lever's objective instead (the bound plus
W * objectives.mi.correspondence_joint, correspondences read from a frozen copy of the initial encoder, nearest
partner image), and the comparison is made on that objective: does the lever make the classes the better optimum?

Usage: python experiments/scale/oracle.py DATA_DIR K STEPS SEED OUT.json [--correspondence W]
           [--setting small|paper] [--device cuda] [--max-seconds S] [--model KEY=VALUE ...]
       python experiments/scale/oracle.py --table OUT_DIR                   (markdown table of the *.json there)
--setting small (default; one thread): experiments/scale/common.sh's budget, random 64 px crops + flip + colour
jitter of the folder datamodule, batch 16, P = 256, encoder width 32, Adam lr 1e-3. --setting paper: the thesis's
128 px crops, batch 64, P = 2048 (the thesis encoder's default width), Adam lr 1e-4 (for a GPU: gpu_thesis.sh).
--model: conf/model keys applied after the setting's (e.g. `--model P=2048 encoder.width=64`: the thesis's
architecture at the small setting; paper_arch.sh; `--model model/encoder=effnet_lite0 encoder.weights=FILE
encoder.freeze=true`: the frozen ImageNet network of section 10, the setting's encoder keys then dropped; a
weights file is loaded as misseg.train loads it). --max-seconds: each of the two runs stops at this wall time if
STEPS is not reached first (the steps done are recorded).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from misseg.data.datamodule import FolderDataModule
from misseg.diagnostics.shortcut import seeded_batches
from misseg.lit.build import build_module, compose_model
from misseg.objectives.mi import (
    correspondence_joint,
    correspondences,
    jsd_bound,
    pool_valid,
    soft_assignment,
    soft_global,
)
from misseg.runs.errors import OneLineArgumentParser, existing_dir, reported_errors

PROG = "experiments/scale/oracle.py"


def class_fractions(mask: torch.Tensor, K: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) labels (255 = ignore) -> per-patch class shares (B, K, U, V) and the valid patches (B, U, V)."""
    labelled = mask != 255
    one_hot = F.one_hot(mask.clamp_max(K - 1) * labelled, K).permute(0, 3, 1, 2).float() * labelled[:, None]
    shares = F.adaptive_avg_pool2d(one_hot, size)
    valid = pool_valid(labelled, size)
    return shares / shares.sum(1, keepdim=True).clamp_min(1e-6), valid


def bound(net, x: torch.Tensor, mask: torch.Tensor, oracle: bool, reference=None, w: float = 0.0) -> torch.Tensor:
    """The objective maximised: eq. 4.12's bound, plus w * the correspondence term when reference is given."""
    L, H = net(x)
    if oracle:
        p, valid = class_fractions(mask, H.shape[1], tuple(L.shape[-2:]))
    else:
        p, valid = soft_assignment(L, H, net.tau), None
    S = soft_global(p, H)
    value = jsd_bound(L, S, valid)["mi"]
    if reference is not None:
        with torch.no_grad():
            partner, match = correspondences(reference(net.inputs(x)), valid)
        value = value + w * correspondence_joint(L, S, partner, match, valid)
    return value


SETTINGS = {
    "small": {"image_size": 64, "batch_size": 16, "model": ["P=256", "encoder.width=32"], "lr": 1e-3, "workers": 0},
    "paper": {"image_size": 128, "batch_size": 64, "model": [], "lr": 1e-4, "workers": 6},
}


def train(
    root: str,
    K: int,
    steps: int,
    seed: int,
    oracle: bool,
    w: float = 0.0,
    setting: str = "small",
    device: str = "cpu",
    max_seconds: float | None = None,
    model: tuple[str, ...] = (),
) -> dict:
    cfg = SETTINGS[setting]
    torch.manual_seed(seed)
    data = FolderDataModule(
        root=root, image_size=cfg["image_size"], batch_size=cfg["batch_size"], num_workers=cfg["workers"], seed=seed
    )
    data.setup()
    base = [o for o in cfg["model"] if not o.startswith("encoder.")] if encoder_group(model) else cfg["model"]
    module = build_module(compose_model("mi", [*base, *model, f"K={K}"]), data.num_classes)
    module.load_initial_weights()  # model.encoder.weights, as training starts (misseg.train's setup)
    net = module.model.to(device)
    reference = copy.deepcopy(net.encoder).requires_grad_(False).eval() if w else None
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    step, curve, start = 0, [], time.monotonic()
    while step < steps:
        for batch in data.train_dataloader():
            batch = data.on_after_batch_transfer({k: v.to(device) for k, v in batch.items()}, 0)
            loss = -bound(net, batch["image"], batch["mask"], oracle, reference, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 50 == 0:
                curve.append((step, -float(loss.detach())))
            if step == steps or (max_seconds and time.monotonic() - start > max_seconds):
                steps = step
                break
    seconds = time.monotonic() - start
    net.eval()
    values = []
    with torch.no_grad():
        for x, mask in seeded_batches(data.val_set, cfg["batch_size"]):
            values.append(float(bound(net, x.to(device), mask.long().to(device), oracle, reference, w)))
    return {"eval_bound": sum(values) / len(values), "train_curve": curve, "steps": steps, "train_seconds": seconds}


def encoder_group(model: tuple[str, ...] | list[str]) -> bool:
    """--model picks another encoder (model/encoder=...): the setting's thesis-encoder keys (width) do not apply."""
    return any(o.startswith("model/encoder=") for o in model)


def table(folder: str) -> None:
    """Per set: the eval bounds of the learned and the oracle run, per seed and their mean."""
    from collections import defaultdict

    rows = defaultdict(list)
    for f in sorted(Path(folder).glob("*.json")):
        r = json.loads(f.read_text())
        rows[(Path(r["data"]).name, r.get("correspondence", 0.0))].append(
            (r["seed"], r["learned"]["eval_bound"], r["oracle"]["eval_bound"])
        )
    head = (
        "| set | correspondence weight | seeds | objective, learned p' | objective, p' = the classes "
        "| learned - classes "
        "| per seed (learned / classes)"
    )
    print(head + " |")
    print("|---|---|---|---|---|---|---|")
    for (name, w), rs in rows.items():
        learned, oracle = (sum(r[i] for r in rs) / len(rs) for i in (1, 2))
        seeds = ", ".join(f"{a:.3f} / {b:.3f}" for _, a, b in sorted(rs))
        print(f"| {name} | {w:g} | {len(rs)} | {learned:.3f} | {oracle:.3f} | {learned - oracle:+.3f} | {seeds} |")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        usage="%(prog)s DATA_DIR K STEPS SEED OUT.json [--correspondence W] [--setting {paper,small}] "
        "[--device DEVICE] [--max-seconds S] [--model KEY=VALUE ...]\n       %(prog)s --table OUT_DIR",
    )
    # optional here so that `--table OUT_DIR` stands alone; required (checked below) without it
    ap.add_argument(
        "data",
        metavar="DATA_DIR",
        nargs="?",
        type=existing_dir("pass a folder set made by experiments/scale/make_data.py"),
        help="a folder set (make_data.py)",
    )
    ap.add_argument("K", type=int, nargs="?", help="clusters")
    ap.add_argument("steps", metavar="STEPS", type=int, nargs="?", help="training steps of each of the two runs")
    ap.add_argument("seed", metavar="SEED", type=int, nargs="?")
    ap.add_argument("out", metavar="OUT.json", nargs="?", help="the result file to write")
    ap.add_argument("--correspondence", type=float, default=0.0, metavar="W")
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--model", nargs="+", default=[], metavar="KEY=VALUE", help="model keys after the setting's")
    ap.add_argument(
        "--table",
        metavar="OUT_DIR",
        type=existing_dir("pass the folder of oracle.py's OUT.json files"),
        help="print the markdown table of the *.json files there instead",
    )
    a = ap.parse_intermixed_args(argv)  # positionals and options in any order, as with required positionals
    positionals = {"DATA_DIR": a.data, "K": a.K, "STEPS": a.steps, "SEED": a.seed, "OUT.json": a.out}
    if a.table is not None:
        given = [k for k, v in positionals.items() if v is not None]
        if given:
            ap.error(f"--table {a.table}: no {', '.join(given)} with --table; make the table and the runs separately")
        return table(a.table)
    missing = [k for k, v in positionals.items() if v is None]
    if missing:
        ap.error(f"the following arguments are required: {', '.join(missing)}")
    if a.K < 1 or a.steps < 1:
        ap.error(f"K={a.K}, STEPS={a.steps}: both must be at least 1")
    if not Path(a.out).parent.is_dir():
        ap.error(f"OUT.json {a.out}: no such directory {Path(a.out).parent}; create it first")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {a.device}: no CUDA device visible to torch; run on a GPU machine or use --device cpu")
    if a.device == "cpu":
        torch.set_num_threads(1)
    with reported_errors(f"{PROG}: error"):  # a malformed set, a bad K: misseg's one line, exit 2
        run(a)


def run(a) -> None:
    """Train the learned and the oracle run, print their eval objectives and write OUT.json."""
    result = {"data": a.data, "K": a.K, "steps": a.steps, "seed": a.seed, "correspondence": a.correspondence}
    result["setting"], result["model"] = a.setting, a.model
    for name in ("learned", "oracle"):
        result[name] = train(
            a.data,
            a.K,
            a.steps,
            a.seed,
            name == "oracle",
            a.correspondence,
            a.setting,
            a.device,
            a.max_seconds,
            tuple(a.model),
        )
        print(
            name,
            f"eval objective {result[name]['eval_bound']:.3f}",
            "train:",
            result[name]["train_curve"][-3:],
            flush=True,
        )
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
