"""How much of eq. 4.12's critic is the score every pair of a position shares: <L_ij, mean_k H_k>.

Usage: python experiments/scale/shared_score.py DATA_DIR CKPT [CKPT ...]   (prints one markdown row per checkpoint)
Each checkpoint's L, H and critic (its a, b under critic=affine or scaled, <L, S> under dot), on batches of 16 centre
crops (64 px) in a seeded random order, as pools.py. Columns, in the critic's units (T = a <L, .> + b):
  shared: a <L_ij, mean_k H_k> + b, the part of every score of L_ij (the joint's and every marginal pair's) that does
    not depend on k, so neither p' nor the difference between a positive and a negative pair carries it
    (model.objective.centre_heads removes it); mean over the positions.
  spread: the standard deviation over k of a <L_ij, H_k>, the part that tells the clusters apart; mean over positions.
  joint, marginal: eq. 4.12's two terms with the checkpoint's negatives and critic, with the H_k as the network
    gives them (centre_heads=false) and centred over k (the `_centred` columns, centre_heads=true), whichever the
    checkpoint was trained with.
  grad along mean: the share of the squared norm of d(-bound)/dL that lies along mean_k H_k, per image. A direction
    taken at random holds 1/P of it; near 1, the bound's gradient on L is one push, the same for every position.
Why: section 26 of experiments/scale/README.md (centroid heads carry the mean of L and saturate the bound).
"""

from __future__ import annotations

import torch
from _cli import batch_means, checkpoint_script  # experiments/scale/_cli.py

from misseg.data.datamodule import FolderDataModule
from misseg.lit.build import load_module
from misseg.objectives.mi import Critic, centre, mi_objective, scores

PROG = "experiments/scale/shared_score.py"

KEYS = (
    "shared",
    "spread",
    "joint",
    "marginal",
    "grad along mean",
    "joint_centred",
    "marginal_centred",
    "grad along mean_centred",
)


def gradient_share(L: torch.Tensor, H: torch.Tensor, direction: torch.Tensor, bound) -> tuple[dict, float]:
    """bound(L, H) -> eq. 4.12's terms; also the share of |d(-mi)/dL|^2 along direction (B, P), per image."""
    L = L.detach().requires_grad_(True)
    with torch.enable_grad():
        out = bound(L, H)
        (g,) = torch.autograd.grad(-out["mi"], L)
    u = torch.nn.functional.normalize(direction, dim=1)[:, :, None, None]  # (B, P, 1, 1)
    along = ((g * u).sum(1) ** 2).sum()
    return out, float(along / (g**2).sum().clamp_min(1e-30))


def shared_scores(L: torch.Tensor, H: torch.Tensor, tau: float, negatives: str, critic: Critic | None = None) -> dict:
    """The columns for one batch: L (B, P, U, V), H (B, K, P) as the network gives them (uncentred)."""
    a, b = critic if critic is not None else (1.0, 0.0)
    T = a * scores(L, H)  # (B, K, U, V); its mean over k is a <L_ij, mean_k H_k>
    row = {"shared": float((T.mean(1) + b).mean()), "spread": float(T.std(1).mean())}

    def bound(L_: torch.Tensor, H_: torch.Tensor) -> dict:
        return mi_objective(L_, H_, tau, negatives=negatives, critic=critic)

    direction = H.mean(1)  # mean_k H_k, the direction both passes measure the gradient along
    for suffix, heads in (("", H), ("_centred", centre(H))):
        out, share = gradient_share(L, heads, direction, bound)
        row |= {f"joint{suffix}": float(out["joint"].detach()), f"marginal{suffix}": float(out["marginal"].detach())}
        row[f"grad along mean{suffix}"] = share
    return row


def score(ckpt: str, data: FolderDataModule) -> dict[str, float]:
    module = load_module(ckpt).eval()
    objective = module.objective
    critic = objective.critic_ab()
    critic = None if critic is None else tuple(float(torch.as_tensor(v).detach()) for v in critic)
    torch.manual_seed(0)

    def per_batch(L: torch.Tensor, H: torch.Tensor) -> dict:
        return shared_scores(L, H, module.model.tau, objective.negatives, critic)

    return batch_means(module, data, KEYS, per_batch)


main = checkpoint_script(PROG, __doc__, KEYS, score)


if __name__ == "__main__":
    main()
