"""Train-step timing (forward + backward + Adam) of misseg and of the naive reference, and its scaling."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from misseg.bench.naive import NaiveHeads, naive_mi_loss
from misseg.module import MISegModule
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
    """One optimisation step on a fixed random batch. impl: 'misseg' (batched) or 'naive' (loops)."""
    torch.manual_seed(0)
    model = MISegModule(K=s.K, P=s.P, sobel=sobel).model  # the thesis's parts at their defaults
    heads = NaiveHeads(s.K, s.P).load_from(model.heads) if impl == "naive" else model.heads
    net = nn.ModuleDict({"inputs": model.inputs, "encoder": model.encoder, "heads": heads}).to(device)
    x = torch.randn(s.B, 3, s.side, s.side, device=device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    tau = model.tau

    def forward(x: torch.Tensor) -> torch.Tensor:
        L = net["encoder"](net["inputs"](x))
        H = net["heads"](L)
        return naive_mi_loss(L, H, tau) if impl == "naive" else mi_objective(L, H, tau)["loss"]

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
    return float((a - b).abs())


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


def scaling(base: Setting, batches: tuple[int, ...], device: torch.device, warmup: int, steps: int) -> dict:
    """Step time of misseg varying one of K, P, image side, batch size from `base` (others fixed)."""
    axes = {**AXES, "B": batches}
    cache: dict[Setting, dict] = {}
    out: dict = {"base": base.label(), "axes": {}}
    for axis, values in axes.items():
        rows = []
        for v in values:
            s = Setting(**{**base.__dict__, axis: v})
            if s not in cache:
                cache[s] = bench_step(s, "misseg", device, warmup, steps)
            rows.append({"value": v, "step_s": cache[s]["min_step_s"]})  # min: least hit by other processes
        exponent = fit_exponent([r["value"] for r in rows], [r["step_s"] for r in rows])
        out["axes"][axis] = {"rows": rows, "exponent": exponent}
    return out


def plot_scaling(result: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 4, figsize=(10, 2.6), dpi=80)
    for ax, (axis, data) in zip(axs, result["axes"].items(), strict=True):
        xs = [r["value"] for r in data["rows"]]
        ax.loglog(xs, [r["step_s"] for r in data["rows"]], "o-", base=2)
        ax.set_xlabel(axis)
        ax.set_title(f"{axis}: t ~ {axis}^{data['exponent']:.2f}", fontsize=9)
        ax.set_xticks(xs, [str(x) for x in xs], fontsize=7)
        ax.minorticks_off()
    axs[0].set_ylabel("step time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
