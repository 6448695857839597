"""The diagnostics of misseg.evaluate (issue 14): linear probe and K-means probe on the encoder's local
features L, the random-init reference (`init=random`, built in misseg.evaluate) and dense CRF refinement.

Protocol, recorded in metrics.json under `probe.split`:
- the evaluation images (the data's val set: every image with split=transductive, the held-out ones with
  split=holdout) are split once, seeded by `seed`, into a fit part (`probe_fit_fraction`, default half)
  and a test part (the rest);
- linear probe: fit on L of the fit part with the masks, scored on the test part with the identity mapping;
- K-means probe: K-means (misseg.baselines.kmeans, K = the checkpoint's K) fit on L of the fit part without
  labels, clusters matched to classes (`matching`) and scored on the test part, as every unsupervised figure;
- `probe.unsupervised`: the method's own clusters scored on the same test part, the like-for-like row.
- crf=true refines every prediction of the run (the method's and the probes') before the argmax: a run with
  crf=true and one without are separate rows, never mixed in one metrics.json.

Glue only: the math is in misseg/diagnostics/ (pure) and misseg/baselines/kmeans.py. Imports of torch and
the data stack are inside the functions, so validation (`check_diagnostics`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig

from misseg.runs.errors import ConfigError
from misseg.runs.provenance import available_cores

if TYPE_CHECKING:  # torch is imported inside the functions: validation imports this module and must stay fast
    import torch

PROBES = ("linear", "kmeans")
INITS = ("trained", "random", "initial")
INIT_BATCHNORMS = ("init", "data")  # init=random's BatchNorm statistics: as drawn, or measured on the images
PROBE_SCHEDULES = ("cosine", "constant")
PROBE_SCHEDULE = "cosine"  # the linear probe's lr schedule (conf/evaluate.yaml probe_schedule); see fit_linear_probe
PROBE_MIN_STEPS = 1000  # ... and its least number of Adam steps (conf/evaluate.yaml probe_min_steps)
PROBE_KMEANS_RESTARTS = 10  # the K-means probe's seedings, lowest inertia kept (conf/evaluate.yaml)
PROBE_LAYERS = ("L", "body")  # what the probes read: L, or a timm body's map before its 1x1 projection to P


def probe_kinds(value: Any) -> list[str]:
    """probe=null | linear | kmeans | all | [linear, kmeans] -> the probes to run, in a fixed order."""
    if value is None or value in ("none", "null", ""):
        return []
    if value == "all":
        return list(PROBES)
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple, ListConfig)) else None
    if names is None or not names or any(n not in PROBES for n in names):
        raise ConfigError(f"probe={value!r}: use null, linear, kmeans, all or a list such as [linear,kmeans]")
    return [p for p in PROBES if p in names]


def probe_layer(cfg: DictConfig) -> str:
    """What the probes read (conf/evaluate.yaml probe_layer): L, the default, or body."""
    return str(cfg.get("probe_layer", "L"))


def check_diagnostics(cfg: DictConfig) -> None:
    """The evaluate keys of this module (conf/evaluate.yaml); one-line ConfigError on the first bad one."""
    from misseg.runs.validation import check_choice, check_int, check_positive

    probe_kinds(cfg.get("probe"))
    check_choice("init", cfg.get("init", "trained"), INITS)
    check_choice("init_batchnorm", cfg.get("init_batchnorm", "init"), INIT_BATCHNORMS)
    if cfg.get("init_batchnorm", "init") == "data" and cfg.get("init", "trained") != "random":
        raise ConfigError(
            f"init_batchnorm=data needs init=random (got init={cfg.get('init', 'trained')}): trained and initial "
            "weights keep the BatchNorm statistics they were trained with"
        )
    fraction = cfg.get("probe_fit_fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"probe_fit_fraction={fraction!r}: must be a number in (0, 1) (share of images to fit on)")
    check_int("probe_epochs", cfg.get("probe_epochs", 20), 1)
    check_positive("probe_lr", cfg.get("probe_lr", 1e-2))
    check_choice("probe_schedule", cfg.get("probe_schedule", PROBE_SCHEDULE), PROBE_SCHEDULES)
    check_int("probe_min_steps", cfg.get("probe_min_steps", PROBE_MIN_STEPS), 0)
    check_int("probe_kmeans_iters", cfg.get("probe_kmeans_iters", 10), 1)
    check_int("probe_kmeans_restarts", cfg.get("probe_kmeans_restarts", PROBE_KMEANS_RESTARTS), 1)
    check_choice("probe_layer", cfg.get("probe_layer", "L"), PROBE_LAYERS)  # the raw value, as typed
    check_crf(cfg.get("crf", False))
    check_crf_workers(cfg)


def check_crf_workers(cfg: DictConfig) -> None:
    """The `crf_workers` key of train, evaluate and the K-means baseline: the dense CRF's processes (0 = this one)."""
    from misseg.runs.validation import check_int

    n = cfg.get("crf_workers", 0)
    check_int("crf_workers", n, 0, " (processes for the dense CRF; 0 = this process)")
    # More processes than cores only adds start-up and memory (each holds a CRF at a time); a value copied from a
    # bigger node would otherwise fork that many processes here.
    cores = available_cores()
    if n > cores:
        raise ConfigError(f"crf_workers={n}: {cores} cores are available here; use at most {cores} (0 = this process)")


def use_crf_workers(cfg: DictConfig) -> None:
    """Apply `crf_workers` (checked by check_crf_workers) to every dense CRF this process runs."""
    from misseg.diagnostics.crf import set_workers

    set_workers(int(cfg.get("crf_workers", 0)))


def check_crf(crf: Any) -> None:
    """The `crf` key of evaluate and of the K-means baseline: a switch, and pydensecrf2 installed when it is on."""
    if not isinstance(crf, bool):
        raise ConfigError(f"crf={crf!r}: use true or false")
    if crf:
        require_crf()


def require_crf(setting: str = "crf=true") -> None:
    """ConfigError naming `setting` unless pydensecrf2 is installed: every switch that runs the CRF (evaluate's and the
    K-means baseline's crf, model.objective.crf_target_weight) is checked here, with the same install hint."""
    from misseg.diagnostics.crf import crf_available, install_hint

    if not crf_available():
        raise ConfigError(install_hint(setting))


def check_probe_layer(cfg: DictConfig, module: torch.nn.Module) -> None:
    """probe_layer=body needs an encoder with a body before its projection; checked once the checkpoint is loaded,
    before any evaluation."""
    from misseg.diagnostics.features import has_body

    if probe_layer(cfg) == "body" and not has_body(module):
        name = type(module.model.encoder).__name__
        raise ConfigError(
            f"probe_layer=body: the checkpoint's encoder ({name}) has no body before a projection to P "
            "(timm encoders only, model/encoder=timm or effnet_lite0...); use probe_layer=L"
        )


def device_for(cfg: DictConfig) -> torch.device:
    """The accelerator of the evaluation: the GPU when the trainer may use one and one exists, else the CPU."""
    import torch

    if str(cfg.trainer.get("accelerator", "auto")) == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


# ------------------------------------------------------------------ predictors and scoring

ProbsFn = Callable[["torch.Tensor"], "torch.Tensor"]  # images -> (B, K, H, W) probabilities


def refine(x: torch.Tensor, probs: torch.Tensor, crf: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities -> (class map, confidence), after the dense CRF when crf (on the denormalised images)."""
    if crf:
        from misseg.data.transforms import denormalize
        from misseg.diagnostics.crf import dense_crf_batch

        probs = dense_crf_batch(denormalize(x), probs)
    confidence, classes = probs.max(dim=1)
    return classes, confidence


def accumulate_confusion(
    loader: Iterable, probs_fn: ProbsFn, num_pred: int, num_classes: int, crf: bool, device: torch.device
) -> torch.Tensor:
    """Whole-set (num_pred, num_classes) confusion of argmax(probs_fn) (CRF-refined when crf) over a loader."""
    import torch

    from misseg.metrics.matching import confusion_matrix

    confusion = torch.zeros(num_pred, num_classes, dtype=torch.long)
    with torch.no_grad():
        for batch in loader:
            x = batch["image"].to(device)
            classes, _ = refine(x, probs_fn(x), crf)
            confusion += confusion_matrix(classes.cpu(), batch["mask"], num_pred, num_classes)
    return confusion


def matched_result(confusion: torch.Tensor, matching: str, num_images: int) -> dict:
    """The same result dict as HungarianSegmentationMetric.compute, from an accumulated confusion."""
    from misseg.metrics.matching import match_and_score

    out = match_and_score(confusion, matching)
    out.update(num_images=num_images, confusion=confusion.tolist())
    return out


def module_probs(module: torch.nn.Module) -> ProbsFn:
    return lambda x: module.predict(x)[2]


def crf_evaluation(module: torch.nn.Module, datamodule: Any, matching: str, device: torch.device) -> dict:
    """The method's unsupervised PA / mIoU on the whole evaluation set with CRF-refined predictions
    (replaces trainer.validate, whose validation_step has no CRF)."""
    from misseg.data.datamodule import with_val_set

    module.eval().to(device)
    loader = with_val_set(datamodule).val_dataloader()
    confusion = accumulate_confusion(
        loader, module_probs(module), module.hparams.K, datamodule.num_classes, True, device
    )
    return matched_result(confusion, matching, len(loader.dataset))


def calibrate_on_images(module: torch.nn.Module, datamodule: Any, device: torch.device) -> int:
    """init_batchnorm=data: the fresh encoder's BatchNorm statistics measured on every evaluation image (no label
    read); the module is left in eval mode on the CPU, as load_module returned it."""
    from misseg.data.datamodule import with_val_set
    from misseg.diagnostics.features import calibrate_batchnorm

    module.eval().to(device)
    loader = with_val_set(datamodule).val_dataloader()
    n = calibrate_batchnorm(module, (batch["image"].to(device) for batch in loader))
    module.cpu()
    return n


def report_predictor(module: torch.nn.Module, crf: bool) -> Callable:
    """images -> (class map, confidence) on the CPU for the report's figures: module.predict_maps, or the
    CRF-refined maps when crf (so the qualitative figure shows what was scored)."""
    if not crf:
        return module.predict_maps

    def predict(x):
        import torch

        with torch.no_grad():
            x = x.to(module.device)
            classes, confidence = refine(x, module.predict(x)[2], True)
        return classes.cpu(), confidence.cpu()

    return predict


# ------------------------------------------------------------------ probes


def _subset_loader(datamodule: Any, positions: Sequence[int]) -> Iterable:
    from torch.utils.data import DataLoader, Subset

    return DataLoader(
        Subset(datamodule.val_set, list(positions)),
        batch_size=datamodule.eval_batch_size,
        shuffle=False,
        num_workers=datamodule.num_workers,
    )


def collect_features(
    module: torch.nn.Module, loader: Iterable, device: torch.device, layer: str = "L"
) -> tuple[torch.Tensor, torch.Tensor]:
    """L (or the `layer` local_features names) of every image of a loader, kept in bfloat16 on `device` (half the
    memory of float32, float32's range; a linear probe does not need more precision), and the masks (uint8, CPU)."""
    import torch

    from misseg.diagnostics.features import local_features

    feats, masks = [], []
    with torch.no_grad():
        for batch in loader:
            feats.append(local_features(module, batch["image"].to(device), layer).to(torch.bfloat16))
            masks.append(batch["mask"])
    return torch.cat(feats), torch.cat(masks)


def linear_probe(
    cfg: DictConfig,
    module: torch.nn.Module,
    fit_loader: Any,
    test_loader: Any,
    num_classes: int,
    crf: bool,
    device: torch.device,
) -> dict:
    """Linear probe fit on L (or probe_layer) of the fit images (kept in bf16: N_fit * P * U * V * 2 bytes), scored
    on the rest."""
    import torch

    from misseg.diagnostics.features import local_features
    from misseg.diagnostics.probe import fit_linear_probe, identity_scores

    layer = probe_layer(cfg)
    features, masks = collect_features(module, fit_loader, device, layer)
    probe, info = fit_linear_probe(
        features,
        masks,
        num_classes,
        epochs=int(cfg.get("probe_epochs", 20)),
        lr=float(cfg.get("probe_lr", 1e-2)),
        schedule=str(cfg.get("probe_schedule", PROBE_SCHEDULE)),
        min_steps=int(cfg.get("probe_min_steps", PROBE_MIN_STEPS)),
        seed=int(cfg.seed),
    )
    del features

    def probs(x):
        return torch.softmax(probe(local_features(module, x, layer), x.shape[-2:]), dim=1)

    confusion = accumulate_confusion(test_loader, probs, num_classes, num_classes, crf, device)
    out = identity_scores(confusion)
    out.pop("mapping")  # the identity: the probe predicts classes
    out.update(info, num_images=len(test_loader.dataset), confusion=confusion.tolist())
    return out


def kmeans_probe(
    cfg: DictConfig,
    module: torch.nn.Module,
    fit_loader: Any,
    test_loader: Any,
    num_classes: int,
    crf: bool,
    device: torch.device,
) -> dict:
    """K-means (K = the checkpoint's K) on L (or probe_layer) of the fit images, matched (cfg.matching) and scored
    on the test ones."""
    import time

    from misseg.baselines.kmeans import KMeansSegmenter, _FeatureBatches, kmeans_fit
    from misseg.diagnostics.crf import labels_to_probs
    from misseg.diagnostics.features import local_features

    K = int(module.hparams.K)
    restarts = int(cfg.get("probe_kmeans_restarts", PROBE_KMEANS_RESTARTS))
    t0 = time.perf_counter()
    layer = probe_layer(cfg)
    feature_fn = lambda x: local_features(module, x, layer)  # noqa: E731
    centres = kmeans_fit(
        _FeatureBatches(fit_loader, feature_fn, device, cache=True),
        K,
        iters=int(cfg.get("probe_kmeans_iters", 10)),
        seed=int(cfg.seed),
        restarts=restarts,
    )
    fit_seconds = time.perf_counter() - t0
    segmenter = KMeansSegmenter(centres, feature_fn)

    # K-means gives labels only: the CRF's input is pydensecrf's unary_from_labels convention (0.7 on the label)
    def probs(x):
        return labels_to_probs(segmenter.predict_maps(x)[0], K).to(x.device)

    confusion = accumulate_confusion(test_loader, probs, K, num_classes, crf, device)
    out = matched_result(confusion, cfg.matching, len(test_loader.dataset))
    out.update(K=K, iters=int(cfg.get("probe_kmeans_iters", 10)), restarts=restarts, fit_seconds=fit_seconds)
    return out


def run_probes(cfg: DictConfig, module: torch.nn.Module, datamodule: Any, device: torch.device) -> dict:
    """The `probe` section of metrics.json: split, the method on the test part, and each probe asked for."""
    from misseg.diagnostics.probe import probe_split

    kinds = probe_kinds(cfg.get("probe"))
    if not kinds:
        return {}
    from misseg.data.datamodule import with_val_set

    with_val_set(datamodule)
    module.eval().to(device)
    crf = bool(cfg.get("crf", False))
    fraction = float(cfg.get("probe_fit_fraction", 0.5))
    try:
        fit, test = probe_split(len(datamodule.val_set), fraction, int(cfg.seed))
    except ValueError as e:
        raise ConfigError(f"probe={cfg.probe}: {e}") from None
    fit_loader, test_loader = _subset_loader(datamodule, fit), _subset_loader(datamodule, test)
    C = datamodule.num_classes
    section: dict = {
        "split": {"seed": int(cfg.seed), "fit_fraction": fraction, "fit_images": len(fit), "test_images": len(test)},
        **({"layer": "body"} if probe_layer(cfg) == "body" else {}),  # recorded only when not L
        "unsupervised": matched_result(
            accumulate_confusion(test_loader, module_probs(module), module.hparams.K, C, crf, device),
            cfg.matching,
            len(test),
        ),
    }
    runners = {"linear": linear_probe, "kmeans": kmeans_probe}
    for kind in kinds:
        section[kind] = runners[kind](cfg, module, fit_loader, test_loader, C, crf, device)
    return {"probe": section}


# ------------------------------------------------------------------ metrics.json, figure, loggers


def diagnostics(
    cfg: DictConfig, module: torch.nn.Module, datamodule: Any, result: dict, run_dir: str | Path, loggers: Sequence = ()
) -> dict:
    """Run the probes asked for; -> the keys evaluate adds to metrics.json (`probe`, and `crf` / `init` when
    not the defaults, so a plain evaluation's metrics.json is unchanged). Writes figures/probes.png and logs
    the figures to `loggers` when there are probes and cfg.report."""
    extra: dict = {}
    if cfg.get("crf", False):
        extra["crf"] = True
    if cfg.get("init", "trained") != "trained":
        extra["init"] = cfg.init
    extra.update(run_probes(cfg, module, datamodule, device_for(cfg)))
    log_metrics(loggers, {**result, **extra})
    if "probe" in extra and cfg.get("report", True):
        from misseg.viz.report import log_figures

        path = save_probe_bars(Path(run_dir) / "figures" / "probes.png", extra["probe"], title_of(cfg))
        log_figures({"probes": path}, loggers)
    return extra


def title_of(cfg: DictConfig) -> str:
    parts = [f"init={cfg.get('init', 'trained')}"] + (["+CRF"] if cfg.get("crf", False) else [])
    parts += ["probes on the body"] if probe_layer(cfg) == "body" else []
    return ", ".join(parts)


def flat_scores(result: dict) -> dict[str, float]:
    """{eval/pa, eval/miou, probe/<name>/pa, ...}; the prefix is eval_crf with crf, so rows never mix."""
    prefix = "eval_crf" if result.get("crf") else "eval"
    out = {f"{prefix}/{k}": float(result[k]) for k in ("pa", "miou") if k in result}
    for name, section in result.get("probe", {}).items():
        for k in ("pa", "miou"):
            if isinstance(section, dict) and k in section:
                out[f"{prefix}/probe/{name}/{k}"] = float(section[k])
    return out


def log_metrics(loggers: Sequence, result: dict) -> None:
    scores = flat_scores(result)
    for logger in loggers or ():
        logger.log_metrics(scores, step=0)
        logger.save()  # CSVLogger only writes its file on save (W&B sends at once)


def save_probe_bars(path: str | Path, section: dict, title: str = "") -> Path:
    """Grouped bars: mIoU and PA of the method's clusters and of each probe, on the probe's test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = {"unsupervised": "method (clusters)", "kmeans": "K-means on L", "linear": "linear probe on L"}
    rows = [k for k in ("unsupervised", "kmeans", "linear") if k in section]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 3.2))
    for offset, metric in ((-0.18, "miou"), (0.18, "pa")):
        values = [section[r][metric] for r in rows]
        bars = ax.bar(x + offset, values, width=0.36, label={"miou": "mIoU", "pa": "PA"}[metric])
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, [labels[r] for r in rows], fontsize=8)
    ax.set_ylim(0, 1.08)
    split = section["split"]
    ax.set_title(
        f"{title + '; ' if title else ''}{split['test_images']} test images (probes fit on {split['fit_images']})",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
