"""Dense CRF refinement (Kraehenbuehl & Koltun 2011) of per-pixel class probabilities, as STEGO and its
successors report "+CRF": mean-field inference with a Gaussian smoothness kernel and a bilateral
(appearance) kernel, Potts compatibility, computed by pydensecrf2 (the authors' C++ permutohedral-lattice
code, a maintained fork of pydensecrf; CPU only, so each image goes through numpy).

Parameters default to STEGO's (crf.py there): 10 iterations, smoothness weight 3 / sxy 1, bilateral weight 4 /
sxy 67 / srgb 3.

pydensecrf2 holds the GIL (threads give no speed-up), so a batch is spread over worker processes when
`set_workers(n)` asks for them (the entry points' `crf_workers` key): the CRF target of a training step at batch 64
costs about 1 s serially, more than the step itself on a GPU. Each image is refined by the same code in either case,
so the result does not depend on the number of workers.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import torch

CRF_PACKAGE = "pydensecrf2"


def install_hint(setting: str = "crf=true") -> str:
    """The one line for a `setting` that runs the CRF while pydensecrf2 is missing: what it needs, how to install it."""
    return (
        f"{setting} needs the {CRF_PACKAGE} package (a C++ extension, built from source: needs a C++ compiler): "
        "pip install 'misseg[crf]'"
    )


INSTALL_HINT = install_hint()


@dataclass(frozen=True)
class CRFParams:
    iters: int = 10
    pos_w: float = 3.0  # smoothness kernel weight (Potts compatibility)
    pos_xy_std: float = 1.0  # its spatial std in pixels
    bi_w: float = 4.0  # appearance (bilateral) kernel weight
    bi_xy_std: float = 67.0  # its spatial std in pixels
    bi_rgb_std: float = 3.0  # its colour std in 0..255 units


def crf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pydensecrf") is not None


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """image (H, W, 3) uint8 RGB, probs (K, H, W) class probabilities -> refined probabilities (K, H, W) float32."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    K, H, W = probs.shape
    if image.shape != (H, W, 3) or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) = ({H}, {W}, 3), got {image.dtype} {image.shape}")
    crf = dcrf.DenseCRF2D(W, H, K)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs.astype(np.float32))))
    crf.addPairwiseGaussian(sxy=params.pos_xy_std, compat=params.pos_w)
    crf.addPairwiseBilateral(
        sxy=params.bi_xy_std, srgb=params.bi_rgb_std, rgbim=np.ascontiguousarray(image), compat=params.bi_w
    )
    return np.asarray(crf.inference(params.iters), np.float32).reshape(K, H, W)


_workers = 0
_pool: tuple[int, ProcessPoolExecutor] | None = None  # (its size, the pool)


def set_workers(n: int) -> None:
    """Refine the images of a batch in n worker processes from now on (0 or 1: one at a time in this process).

    The pool starts at the first batch that uses it and is kept until the process exits or another number is set
    (a Hydra multirun that ends at 0 keeps no idle processes). Per process: under DDP every rank starts its own.
    """
    global _workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"CRF workers: {n!r} must be an integer >= 0 (0 = in this process)")
    if _pool is not None and _pool[0] != n:
        _drop_pool()
    _workers = n


def get_workers() -> int:
    return _workers


def _worker_pool(n: int) -> ProcessPoolExecutor:
    """The pool of n processes, started on first use; a pool of another size is shut down first."""
    global _pool
    if _pool is not None and _pool[0] != n:
        _drop_pool()
    if _pool is None:
        import multiprocessing

        # forkserver, not fork: the caller holds torch's thread pools and Lightning's threads, which a fork copies
        # half-way; the server process forks clean workers
        _pool = (n, ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("forkserver")))
    return _pool[1]


def _drop_pool(wait: bool = True) -> None:
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=wait)
        _pool = None


def _dense_crf_args(args: tuple[np.ndarray, np.ndarray, CRFParams]) -> np.ndarray:
    return dense_crf(*args)


def dense_crf_batch(
    images: torch.Tensor, probs: torch.Tensor, params: CRFParams = CRFParams(), workers: int | None = None
) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1], probs (B, K, H, W) -> refined probabilities (B, K, H, W) on probs' device.

    One image at a time (the library's lattice is not batched), spread over `workers` processes (None: the number
    `set_workers` set; 0 or 1: in this process, leaving any pool as it is).
    """
    n = _workers if workers is None else workers
    rgb = (images[:, :3].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    p = probs.detach().float().cpu().numpy()
    if n > 1 and len(p) > 1:
        chunk = math.ceil(len(p) / n)  # one chunk per worker, not a round trip per ~9 ms image
        jobs = zip(rgb, p, [params] * len(p), strict=True)
        try:
            out = np.stack(list(_worker_pool(n).map(_dense_crf_args, jobs, chunksize=chunk)))
        except BrokenProcessPool:
            # a worker died (e.g. out of memory): the next batch starts a fresh pool, not this broken one
            _drop_pool(wait=False)
            raise RuntimeError(
                f"a dense-CRF worker process died (crf_workers={n}); use fewer workers, or crf_workers=0"
            ) from None
    else:
        out = np.stack([dense_crf(rgb[i], p[i], params) for i in range(len(p))])
    return torch.from_numpy(out).to(probs.device)


def labels_to_probs(labels: torch.Tensor, num_labels: int, gt_prob: float = 0.7) -> torch.Tensor:
    """Hard labels (B, H, W) -> probabilities (B, K, H, W): gt_prob on the label, the rest shared evenly.

    The CRF input for predictors that give only a label (K-means): pydensecrf's `unary_from_labels` convention.
    """
    if num_labels < 2:
        return torch.ones(labels.shape[0], 1, *labels.shape[1:], device=labels.device)
    rest = (1 - gt_prob) / (num_labels - 1)
    onehot = torch.nn.functional.one_hot(labels.long(), num_labels).permute(0, 3, 1, 2).float()
    return onehot * (gt_prob - rest) + rest
