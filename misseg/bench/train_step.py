"""Train-step timing (forward + backward + Adam) of misseg and of two references, and its scaling.

Timings are interleaved: every implementation / setting runs once per round, the order rotating between
rounds, so a load spike on a shared machine hits all of them rather than one; each figure is the median
over the rounds with its min-max spread, and a difference smaller than the spread is flagged, not reported
as a result (`separated`, `scaling`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from misseg.bench.naive import NaiveHeads, einsum_mi_loss, naive_mi_loss
from misseg.lit.mi import MISegModule
from misseg.objectives.mi import mi_objective


@dataclass(frozen=True)
class Setting:
    B: int
    side: int
    P: int
    K: int

    def label(self) -> str:
        return f"B={self.B} {self.side}x{self.side} P={self.P} K={self.K}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


IMPLS = ("misseg", "einsum", "naive")


def time_calls(fn: Callable[[], object], warmup: int, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` calls after `warmup` untimed ones (device synchronised around each)."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def make_step(
    s: Setting,
    impl: str,
    device: torch.device,
    channels_last: bool = False,
    bf16: bool = False,
    compile: bool = False,
    sobel: bool = True,
) -> Callable[[], torch.Tensor]:
    """One optimisation step on a fixed random batch.

    impl: 'misseg' (batched heads, objectives/mi.py), 'einsum' (misseg's heads, the loss as one einsum per
    contraction: misseg/bench/naive.py) or 'naive' (a loop over the K heads, negatives image by image).
    """
    torch.manual_seed(0)
    model = MISegModule(K=s.K, P=s.P, sobel=sobel).model  # the thesis's parts at their defaults
    heads = NaiveHeads(s.K, s.P).load_from(model.heads) if impl == "naive" else model.heads
    net = nn.ModuleDict({"inputs": model.inputs, "encoder": model.encoder, "heads": heads}).to(device)
    x = torch.randn(s.B, 3, s.side, s.side, device=device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    tau = model.tau

    loss_fn = loss_function(impl)

    def forward(x: torch.Tensor) -> torch.Tensor:
        L = net["encoder"](net["inputs"](x))
        return loss_fn(L, net["heads"](L), tau)

    fwd = torch.compile(forward) if compile else forward
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = fwd(x)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def loss_function(impl: str) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r}: use one of {IMPLS}")
    return {"naive": naive_mi_loss, "einsum": einsum_mi_loss}.get(
        impl, lambda L, H, tau: mi_objective(L, H, tau)["loss"]
    )


def make_objective_step(B: int, side: int, P: int, K: int, impl: str, device: torch.device) -> Callable[[], None]:
    """Forward + backward of the loss alone from fixed features L (B, P, side, side) and H (B, K, P)."""
    g = torch.Generator().manual_seed(0)
    L = torch.randn(B, P, side, side, generator=g).to(device).requires_grad_()
    H = torch.randn(B, K, P, generator=g).to(device).requires_grad_()
    loss_fn, tau = loss_function(impl), P**-0.5

    def step() -> None:
        L.grad = H.grad = None
        loss_fn(L, H, tau).backward()

    return step


def interleaved(fns: dict, warmup: int, rounds: int, device: torch.device) -> dict:
    """{key: [seconds of each round]}: every fn runs once per round, the order rotating between rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    keys = list(fns)
    times: dict = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            t = time.perf_counter()
            fns[k]()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return times


def spread(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def separated(a: list[float], b: list[float]) -> bool:
    """The two sets of timings do not overlap: their difference exceeds their spread (else: noise)."""
    return max(a) < min(b) or max(b) < min(a)


def fmt_spread(times: list[float]) -> str:
    s = spread(times)
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def check_same_math(device: torch.device) -> float:
    """|loss_misseg - loss_naive| on one small batch with shared weights: the reference computes the same."""
    s = Setting(4, 32, 64, 5)
    torch.manual_seed(0)
    model = MISegModule(K=s.K, P=s.P, sobel=True).model.to(device).eval()
    naive = NaiveHeads(s.K, s.P).load_from(model.heads).to(device).eval()
    x = torch.randn(s.B, 3, s.side, s.side, device=device)
    with torch.no_grad():
        L = model.encoder(model.inputs(x))
        a = mi_objective(L, model.heads(L), model.tau)["loss"]
        b = naive_mi_loss(L, naive(L), model.tau)
        c = einsum_mi_loss(L, model.heads(L), model.tau)
    return max(float((a - b).abs()), float((a - c).abs()))


def bench_step(s: Setting, impl: str, device: torch.device, warmup: int, steps: int, **fast) -> dict:
    step = make_step(s, impl, device, **fast)
    times = time_calls(step, warmup, steps, device)
    mean = sum(times) / len(times)
    return {"setting": s.label(), **s.__dict__, "impl": impl, **fast, "warmup": warmup, "steps": steps,
            "step_s": mean, "min_step_s": min(times), "images_per_s": s.B / mean}  # fmt: skip


def fit_exponent(xs: list[float], ts: list[float]) -> float:
    """Least-squares slope of log(t) against log(x): t ~ x^slope."""
    lx, lt = [math.log(x) for x in xs], [math.log(t) for t in ts]
    mx, mt = sum(lx) / len(lx), sum(lt) / len(lt)
    return sum((a - mx) * (b - mt) for a, b in zip(lx, lt, strict=True)) / sum((a - mx) ** 2 for a in lx)


AXES = {"K": (2, 8, 15, 27), "P": (256, 1024, 2048), "side": (64, 128, 256)}


def scaling(base: Setting, axes: dict[str, tuple[int, ...]], device: torch.device, warmup: int, rounds: int) -> dict:
    """Step time of misseg varying one axis at a time from `base`, all settings interleaved round by round.

    Per axis: the median and min-max of every value; `separable` = its timings do not overlap the previous
    value's; the exponent (slope of log median time vs log value) with its range over the rounds (one fit per
    round) and `trusted` = that range is narrower than |exponent|, i.e. the spread does not exceed the effect.
    """
    settings = list(dict.fromkeys(Setting(**{**base.__dict__, a: v}) for a, vs in axes.items() for v in vs))
    times = interleaved({s: make_step(s, "misseg", device) for s in settings}, warmup, rounds, device)
    out: dict = {"base": base.label(), "warmup": warmup, "rounds": rounds, "axes": {}}
    for axis, values in axes.items():
        ts = [times[Setting(**{**base.__dict__, axis: v})] for v in values]
        rows = [
            {"value": v, "step_s": spread(t)["median"], **spread(t), "times": t}
            for v, t in zip(values, ts, strict=True)
        ]
        for prev, row in zip(rows[:-1], rows[1:], strict=True):
            row["separable"] = separated(prev["times"], row["times"])
        exponent = fit_exponent(list(values), [r["median"] for r in rows])
        per_round = [fit_exponent(list(values), [t[i] for t in ts]) for i in range(rounds)]
        lo, hi = min(per_round), max(per_round)
        out["axes"][axis] = {"rows": rows, "exponent": exponent, "exponent_min": lo, "exponent_max": hi,
                             "trusted": hi - lo < abs(exponent)}  # fmt: skip
    return out


def plot_scaling(result: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 4, figsize=(10, 2.6), dpi=80)
    for ax, (axis, data) in zip(axs, result["axes"].items(), strict=True):
        xs, rows = [r["value"] for r in data["rows"]], data["rows"]
        med = [r["step_s"] for r in rows]
        err = [[r.get("min", r["step_s"]) for r in rows], [r.get("max", r["step_s"]) for r in rows]]
        err = [[m - lo for m, lo in zip(med, err[0], strict=True)], [hi - m for m, hi in zip(med, err[1], strict=True)]]
        ax.errorbar(xs, med, yerr=err, fmt="o-", capsize=2)  # median, whiskers = min-max over the rounds
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel(axis)
        noisy = "" if data.get("trusted", True) else " (noise)"
        ax.set_title(f"{axis}: t ~ {axis}^{data['exponent']:.2f}{noisy}", fontsize=9)
        ax.set_xticks(xs, [str(x) for x in xs], fontsize=7)
        ax.minorticks_off()
    axs[0].set_ylabel("step time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
