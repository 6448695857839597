"""Dataset-wide K-means (thesis sec. 5.5): one set of centres for the whole dataset, on pixel colours or on
any feature map (a callable images -> (B, C, h, w)), evaluated with the same metric as every other method.

Mini-batch Lloyd iterations in torch on the data's device (no sklearn in the hot path): each pass
accumulates per-cluster sums and counts over all batches, so a pass is one exact Lloyd step on a random
pixel subsample of every batch. k-means++ seeding on a pixel sample drawn from every batch.

CLI: python -m misseg.baselines.kmeans [data overrides | experiment=NAME] [kmeans.K=..] -> metrics.json + figures.
kmeans.features=rgb (default) | ckpt (L of a misseg checkpoint) | backbone (a frozen pretrained timm network).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch.nn import functional as F

from misseg.metrics.segmentation import HungarianSegmentationMetric

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def rgb_features(x: torch.Tensor) -> torch.Tensor:
    """The raw (normalised) pixel colours: (B, 3+, H, W) -> (B, 3, H, W)."""
    return x[:, :3]


def kmeans_plusplus(x: torch.Tensor, K: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on samples x (N, C) -> (K, C).

    The loop is over the K seeds (inherent to the method), each step vectorised over the N samples.
    """
    if x.shape[0] < K:
        raise ValueError(f"K-means with K={K} needs at least K pixels, got {x.shape[0]}")
    first = torch.randint(0, x.shape[0], (1,), generator=generator).to(x.device)
    centres = [x[first]]
    d2 = torch.cdist(x, centres[0]).squeeze(1).square()
    for _ in range(1, K):
        weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)  # all points on centres: uniform
        idx = torch.multinomial(weights.cpu(), 1, generator=generator).to(x.device)
        centres.append(x[idx])
        d2 = torch.minimum(d2, torch.cdist(x, x[idx]).squeeze(1).square())
    return torch.cat(centres)


def _subsample(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    if x.shape[0] <= n:
        return x
    return x[torch.randperm(x.shape[0], generator=generator)[:n].to(x.device)]


def _lloyd(
    batches: Iterable[torch.Tensor],
    K: int,
    iters: int,
    max_pixels_per_batch: int,
    g: torch.Generator,
    init: str,
    init_pixels_per_batch: int,
) -> torch.Tensor:
    """One K-means run from one seeding: -> centres (K, C)."""
    sample = torch.cat([_subsample(x.float(), init_pixels_per_batch, g) for x in batches])
    if init == "k-means++":
        centres = kmeans_plusplus(sample, K, g)
    else:
        centres = _subsample(sample, K, g).clone()
    for _ in range(iters):
        sums, counts = torch.zeros_like(centres), torch.zeros(K, device=centres.device)
        for x in batches:
            x = _subsample(x.float(), max_pixels_per_batch, g)
            assign = torch.cdist(x, centres).argmin(1)
            sums.index_add_(0, assign, x)
            counts += torch.bincount(assign, minlength=K).float()
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centres[empty] = x[torch.randint(0, x.shape[0], (int(empty.sum()),), generator=g).to(x.device)]
    return centres


def kmeans_inertia(
    batches: Iterable[torch.Tensor], centres: torch.Tensor, max_pixels_per_batch: int = 200_000, seed: int = 0
) -> float:
    """Mean squared distance of the pixels to their nearest centre (on the same seeded subsample of every
    batch for any centres, so that inertias of different fits compare)."""
    g = torch.Generator().manual_seed(seed)
    total, n = 0.0, 0
    for x in batches:
        x = _subsample(x.float(), max_pixels_per_batch, g)
        total += float(torch.cdist(x, centres).min(1).values.square().sum())
        n += x.shape[0]
    return total / max(n, 1)


def restart_seed(seed: int, r: int) -> int:
    """Restart r of a fit seeded `seed`: restart 0 is the seed itself (restarts=1 is the single fit), the others
    are spaced so that the restarts of seeds 0, 1, 2 ... never share a draw."""
    return seed + r * 1_000_003


def kmeans_fit(
    batches: Iterable[torch.Tensor],
    K: int,
    iters: int = 10,
    max_pixels_per_batch: int = 200_000,
    seed: int = 0,
    init: str = "k-means++",
    init_pixels_per_batch: int = 2048,
    restarts: int = 1,
) -> torch.Tensor:
    """batches: a re-iterable of (N, C) pixel tensors (any device). -> centres (K, C) on that device.

    init: "k-means++" (default) or "random", on up to `init_pixels_per_batch` pixels from every batch.
    Empty clusters are re-seeded with random pixels of the last batch.
    restarts: independent seedings (seeds `restart_seed(seed, r)`); the fit with the lowest inertia is kept, a
    label-free choice (scikit-learn's n_init). One seeding is a lottery between local optima on learned
    features: on one MI run's L it scored anywhere from 0.348 to 0.616 mIoU (experiments/scale section 11).
    """
    if init not in ("k-means++", "random"):
        raise ValueError(f"init={init!r}: use 'k-means++' or 'random'")
    if restarts < 1:
        raise ValueError(f"restarts={restarts}: use 1 or more")
    best, best_inertia = None, float("inf")
    for r in range(restarts):  # a loop over whole fits, each vectorised over the pixels
        g = torch.Generator().manual_seed(restart_seed(seed, r))
        centres = _lloyd(batches, K, iters, max_pixels_per_batch, g, init, init_pixels_per_batch)
        if restarts == 1:
            return centres
        inertia = kmeans_inertia(batches, centres, max_pixels_per_batch, seed)
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    return best


def kmeans_predict(pixels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """pixels: (B, C, H, W) -> cluster ids (B, H, W)."""
    B, C, H, W = pixels.shape
    flat = pixels.permute(0, 2, 3, 1).reshape(-1, C).float()
    return torch.cdist(flat, centres).argmin(1).reshape(B, H, W)


def kmeans_predict_maps(
    features: torch.Tensor, centres: torch.Tensor, size: tuple[int, int] | torch.Size | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """features (B, C, h, w) -> cluster map and confidence (B, H, W) at `size` (default: h, w).

    Squared distances to the centres are upsampled bilinearly (as the trained methods upsample their
    probabilities), then argmin. Confidence = 1 - d_nearest / d_second in [0, 1] (0 on a cluster border).
    """
    B, C, h, w = features.shape
    flat = features.permute(0, 2, 3, 1).reshape(-1, C).float()
    d2 = torch.cdist(flat, centres).square().reshape(B, h, w, -1).permute(0, 3, 1, 2)
    if size is not None and tuple(size) != (h, w):
        d2 = F.interpolate(d2, size=tuple(size), mode="bilinear", align_corners=False).clamp_min(0)
    if centres.shape[0] == 1:
        return torch.zeros_like(d2[:, 0], dtype=torch.long), torch.ones_like(d2[:, 0])
    two = d2.topk(2, dim=1, largest=False)
    d = two.values.sqrt()
    confidence = 1 - d[:, 0] / d[:, 1].clamp_min(1e-12)
    return two.indices[:, 0], confidence


class KMeansSegmenter:
    """Fitted centres + the feature map they live in: a predictor with the trained modules' `predict_maps`.
    crf: the label maps refined by the dense CRF (labels only, so its input is pydensecrf's unary_from_labels
    convention, `labels_to_probs`; the confidence is then the CRF's)."""

    def __init__(self, centres: torch.Tensor, feature_fn: FeatureFn = rgb_features, crf: bool = False) -> None:
        self.centres, self.feature_fn, self.crf = centres, feature_fn, crf

    @torch.no_grad()
    def predict_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, H, W) normalised images -> cluster map (B, H, W) long and confidence (B, H, W), on the CPU."""
        feats = self.feature_fn(x.to(self.centres.device))
        classes, confidence = kmeans_predict_maps(feats, self.centres, x.shape[-2:])
        if self.crf:
            from misseg.diagnostics.crf import labels_to_probs
            from misseg.diagnostics.evaluation import refine

            classes, confidence = refine(x.cpu(), labels_to_probs(classes.cpu(), self.centres.shape[0]), True)
        return classes.cpu(), confidence.cpu()


class _FeatureBatches:
    """Re-iterable (N, C) feature rows of every batch of a loader, computed once and kept (cache=True)."""

    def __init__(self, loader, feature_fn: FeatureFn, device: torch.device, cache: bool) -> None:
        self.loader, self.feature_fn, self.device, self.cache = loader, feature_fn, device, cache
        self._cached: list[torch.Tensor] | None = None

    def _compute(self):
        with torch.no_grad():
            for batch in self.loader:
                f = self.feature_fn(batch["image"].to(self.device))
                yield f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).float()

    def __iter__(self):
        if not self.cache:
            return self._compute()
        if self._cached is None:
            self._cached = list(self._compute())
        return iter(self._cached)


def kmeans_baseline(
    fit_loader,
    eval_loader,
    K: int,
    num_classes: int,
    feature_fn: FeatureFn = rgb_features,
    iters: int = 10,
    seed: int = 0,
    matching: str = "hungarian",
    device: str | torch.device = "cpu",
    cache: bool = True,
    max_pixels_per_batch: int = 200_000,
    restarts: int = 1,
    crf: bool = False,
) -> tuple[dict, KMeansSegmenter]:
    """Fit K-means on `feature_fn` of the images of `fit_loader`, score on `eval_loader` (batches of
    {"image", "mask"}) with HungarianSegmentationMetric. -> (metric result + fit/eval seconds, predictor).

    cache: keep the features of every batch in memory after the first pass (one data pass instead of
    restarts x (iters + 2)); turn off for datasets whose features do not fit.
    restarts: seedings, the lowest-inertia fit kept (kmeans_fit).
    crf: score the label maps after the dense CRF (as `misseg.evaluate crf=true` scores a trained model's), the
    reference a "+ CRF" row of a method is compared with.
    """
    device = torch.device(device)
    t0 = time.perf_counter()
    batches = _FeatureBatches(fit_loader, feature_fn, device, cache)
    centres = kmeans_fit(
        batches, K, iters=iters, max_pixels_per_batch=max_pixels_per_batch, seed=seed, restarts=restarts
    )
    t1 = time.perf_counter()
    segmenter = KMeansSegmenter(centres, feature_fn, crf=crf)
    metric = HungarianSegmentationMetric(K, num_classes, matching=matching)
    for batch in eval_loader:
        classes, _ = segmenter.predict_maps(batch["image"])
        metric.update(classes, batch["mask"])
    result = metric.compute()
    result.update(fit_seconds=t1 - t0, eval_seconds=time.perf_counter() - t1)
    return result, segmenter


def kmeans_rgb_baseline(loader, K: int, num_classes: int, iters: int = 10, seed: int = 0) -> dict:
    """Fit K-means on the RGB pixels served by `loader` (batches of {"image", "mask"}) and score it there."""
    return kmeans_baseline(loader, loader, K, num_classes, rgb_features, iters=iters, seed=seed)[0]


def encoder_features(ckpt_path: str | Path, device: str | torch.device = "cpu") -> FeatureFn:
    """The local features L = C(inputs(x)) of a trained misseg checkpoint (MI or IIC), as a feature_fn."""
    from misseg.diagnostics.features import local_features
    from misseg.lit.build import load_module

    module = load_module(ckpt_path).to(device).eval()
    return lambda x: local_features(module, x)


def backbone_features(
    name: str, weights: str, stride: int, dilate: bool, upsample: int, device: str | torch.device = "cpu"
) -> FeatureFn:
    """The map of a frozen timm network loaded from a local weights file, with no projection (channels as the body
    has them): K-means on pretrained features, the reference every method on a pretrained network must beat
    (STEGO reports it for DINO). stride: the body's output stride, as the encoder presets spell it."""
    from misseg.models.backbone import BackboneError, TimmBackbone
    from misseg.runs.errors import ConfigError

    try:
        net = TimmBackbone(
            name,
            P=None,
            d=stride // upsample,
            freeze=True,
            stride=stride,
            dilate=dilate,
            upsample=upsample,
            key="kmeans.backbone",
        )
        net.load_weights(weights)
    except BackboneError as e:
        raise ConfigError(str(e)) from None
    net = net.to(device).eval()
    return lambda x: net(x)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fit_loader_of(datamodule):
    """Deterministic (eval-transform) loader over the *training* images: K-means never sees held-out images."""
    from torch.utils.data import DataLoader

    from misseg.data.transforms import eval_transform

    train_idx, _ = datamodule.split_indices()
    dataset = datamodule.make_dataset(eval_transform(datamodule.image_size, datamodule.resize_shorter), train_idx)
    return DataLoader(dataset, batch_size=datamodule.eval_batch_size, shuffle=False, num_workers=datamodule.num_workers)


def run(cfg) -> dict:
    """The Hydra entry point's body (cfg: the composed conf/kmeans.yaml)."""
    import pytorch_lightning as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from misseg.lit.build import instantiate_dict
    from misseg.runs.results import figures_dir, write_metrics
    from misseg.runs.validation import validate_kmeans_cfg
    from misseg.viz.report import write_report

    validate_kmeans_cfg(cfg)  # again per job: a multirun's values are not checked before Hydra starts
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = HydraConfig.get().runtime.output_dir
    km = cfg.kmeans
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")
    device = resolve_device(km.device)
    if km.features == "rgb":
        feature_fn = rgb_features
    elif km.features == "ckpt":
        feature_fn = encoder_features(km.ckpt_path, device)
    else:  # backbone
        b = km.backbone
        feature_fn = backbone_features(b.name, b.weights, int(b.stride), bool(b.dilate), int(b.upsample), device)
    K = int(km.K or datamodule.num_classes)
    crf = bool(cfg.get("crf", False))
    if crf:
        from misseg.diagnostics.evaluation import use_crf_workers

        use_crf_workers(cfg)
    result, segmenter = kmeans_baseline(
        fit_loader_of(datamodule),
        datamodule.val_dataloader(),
        K,
        datamodule.num_classes,
        feature_fn,
        iters=km.iters,
        seed=cfg.seed,
        matching=cfg.matching,
        device=device,
        cache=km.cache,
        max_pixels_per_batch=km.max_pixels_per_batch,
        restarts=km.restarts,
        crf=crf,
    )
    result.update(method="kmeans", features=km.features, K=K, restarts=km.restarts)
    if crf:
        result.update(crf=True)  # a separate row: never mixed with crf=false runs
    if km.features == "backbone":
        result.update(backbone={k: km.backbone[k] for k in ("name", "weights", "stride", "dilate", "upsample")})
    metrics_path = write_metrics(run_dir, result, datamodule.classes)
    title = f"K-means ({km.features}, K={K})" + (" + CRF" if crf else "")
    if cfg.report:
        loggers = instantiate_dict(cfg.get("logger"))
        write_report(
            run_dir,
            segmenter.predict_maps,
            datamodule,
            result,
            loggers,
            title=title,
            out_dir=figures_dir(metrics_path),
        )
    print(f"{title}: PA {result['pa']:.4f}  mIoU {result['miou']:.4f}  [{result['matching']}]")
    print(f"run directory: {run_dir}")
    return result


def _main(argv: list[str] | None = None) -> None:
    """Validate the command line before Hydra creates anything (one line, exit 2), then run."""
    import sys

    import hydra

    from misseg.runs.config import config_dir
    from misseg.runs.errors import reported_errors
    from misseg.runs.validation import precheck, validate_kmeans_cfg

    with reported_errors():
        precheck(config_dir(), "kmeans", sys.argv[1:] if argv is None else argv, validate_kmeans_cfg)

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="kmeans")
    def main(cfg) -> float | None:
        with reported_errors():
            return run(cfg).get("miou")

    main()


if __name__ == "__main__":
    _main()
