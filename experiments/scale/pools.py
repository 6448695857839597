"""Eq. 4.12 of trained checkpoints against each pool of negatives, averaged over an eval set's batches.

Usage: python experiments/scale/pools.py DATA_DIR CKPT [CKPT ...]   (prints one markdown row per checkpoint)
Each checkpoint's own p', S and critic (its a, b under critic=affine or scaled, <L, S> under dot), scored against the
negatives of every option of model.objective.negatives: own_image (the image's other positions), local (the same
position of the other images: the thesis), local shuffled (a random other position of the other images), mixed
(own_image and local, half each), own_image_balanced and mixed_balanced (own_image and mixed, each cluster weighing
the same in its pool).
Why: section 23's lever trains on the mixed pool; this says which half each trained partition pays for (a map of
position scores on own_image only, whole-image labels on local only). Batches of 16 centre crops (64 px) in a seeded
random order, as shortcut.py; the shuffled column draws its permutations from the global generator seeded once per
checkpoint, so a row is reproducible.
"""

from __future__ import annotations

import torch
from _cli import batch_means, checkpoint_script  # experiments/scale/_cli.py

from misseg.data.datamodule import FolderDataModule
from misseg.lit.build import load_module
from misseg.objectives.mi import (
    balanced_negative_weights,
    jsd_bound,
    jsd_own_image,
    jsd_own_image_balanced,
    mix_pools,
    soft_assignment,
    soft_global,
)

PROG = "experiments/scale/pools.py"

KEYS = ("own_image", "local", "local_shuffled", "mixed", "own_image_balanced", "mixed_balanced")


def pool_bounds(L: torch.Tensor, H: torch.Tensor, tau: float, critic=None) -> dict[str, float]:
    """The bound (eq. 4.12) of one batch against each pool of negatives, S from the checkpoint's own p'."""
    p = soft_assignment(L, H, tau)
    S = soft_global(p, H)
    own, local = jsd_own_image(L, S, critic=critic), jsd_bound(L, S, critic=critic)
    # jsd_own_image_balanced and jsd_mixed_balanced from their halves, the own-image half computed once
    own_b = jsd_own_image_balanced(L, S, p, critic=critic)
    local_b = jsd_bound(L, S, critic=critic, weights=balanced_negative_weights(p, over="position"))
    return {
        "own_image": float(own["mi"]),
        "local": float(local["mi"]),
        "local_shuffled": float(jsd_bound(L, S, negative_positions="shuffled", critic=critic)["mi"]),
        "mixed": float(mix_pools(own, local)["mi"]),  # jsd_mixed without computing its two pools again
        "own_image_balanced": float(own_b["mi"]),
        "mixed_balanced": float(mix_pools(own_b, local_b)["mi"]),
    }


def score(ckpt: str, data: FolderDataModule) -> dict[str, float]:
    module = load_module(ckpt).eval()
    critic = module.objective.critic_ab()
    torch.manual_seed(0)  # the shuffled column's permutations
    # the bound as the run trained it (a run with centred heads, section 26, scores its H_k centred over k)
    heads = module.objective.scored_heads
    return batch_means(module, data, KEYS, lambda L, H: pool_bounds(L, heads(H), module.model.tau, critic))


main = checkpoint_script(PROG, __doc__, KEYS, score)


if __name__ == "__main__":
    main()
