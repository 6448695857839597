"""How often do nearest-neighbour correspondences across images join two patches of the same class?

Usage: python experiments/scale/correspondence.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint and
feature source)

The correspondence lever (model.objective.correspondence_weight, objectives/mi.py `correspondences`) can only
pull clusters towards the classes if its correspondences join same-class patches more often than chance. This
measures that for these feature sources: the trained L; L of the same architecture at a random init (seed 0); the
RGB mean of each patch; and, for a checkpoint trained with the lever, its `reference` (the frozen copy of its
initial encoder that the lever reads). For each image of a seeded batch of 16 (64 px centre crops) the partner is
the closest other image ("random partner" rows: a random other image), each patch is matched to its closest patch
there, and `precision` is the fraction of matches whose patch labels (majority label; patches at least half
ignore are left out) agree. `chance` is the same fraction for a uniformly random valid patch of the same partner.
`clusters agree` is how often the trained model's own cluster (argmax p') is the same at both ends of a match: a
source that MI's clusters already follow gives the lever nothing new to say. `within 1 patch`: matches at most one
patch away from the anchor's own position (near-duplicate partners, e.g. the next video frame). Labels are used
for this evaluation only.
"""

from __future__ import annotations

import torch
from _cli import (  # experiments/scale/_cli.py: DATA_DIR CKPT... and the one-line errors
    data_and_checkpoints,
    eval_view,
    run,
)
from oracle import class_fractions  # experiments/scale/oracle.py: the labels pooled to the patch grid
from torch.nn import functional as F

from misseg.diagnostics.shortcut import seeded_batches
from misseg.lit.build import load_module
from misseg.objectives.mi import correspondences, random_partners

PROG = "experiments/scale/correspondence.py"


def patch_labels(masks: torch.Tensor, size: tuple[int, int], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) masks (255 = ignore) -> majority label (B, UV) and valid (B, UV): >= half the patch labelled."""
    shares, valid = class_fractions(masks.long(), num_classes, size)
    return shares.argmax(1).flatten(1), valid.flatten(1)


def score(
    features: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, clusters: torch.Tensor, partner=None
) -> dict:
    B, _, U, V = features.shape
    partner, match = correspondences(features, valid.view(B, U, V), partner)
    own = torch.arange(U * V)[None]
    near = ((match // V - own // V).abs() <= 1) & ((match % V - own % V).abs() <= 1)
    lab_c, val_c, clu_c = labels[partner], valid[partner], clusters[partner]
    ok = valid & val_c.gather(1, match)
    same = (labels == lab_c.gather(1, match)) & ok
    agree = (clusters == clu_c.gather(1, match)) & ok
    # chance: a uniformly random valid patch of the same partner has the anchor's label with this probability
    hits = (labels[:, :, None] == lab_c[:, None, :]) & val_c[:, None, :]
    chance = hits.sum(2).float() / val_c.sum(1, keepdim=True).clamp_min(1)
    n = ok.sum().clamp_min(1)
    return {
        "precision": same.sum().item() / n.item(),
        "chance": (chance * valid).sum().item() / valid.sum().clamp_min(1).item(),
        "clusters agree": agree.sum().item() / n.item(),
        "within 1 patch": (near & ok).sum().item() / n.item(),
    }


def table(root: str, ckpts: list[str]) -> None:
    """The header, then one markdown row per checkpoint and feature source."""
    data = eval_view(root)
    keys = ("precision", "chance", "clusters agree", "within 1 patch")
    print("| checkpoint | features | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for ckpt in ckpts:
        trained = load_module(ckpt)
        random = load_module(ckpt, random_init=True, seed=0)  # the random-init reference: the same draw every call
        net, net0 = trained.model, random.model
        rows: dict[str, list[dict]] = {}
        g = torch.Generator().manual_seed(0)
        for x, masks in seeded_batches(data.val_set):
            with torch.no_grad():
                L, H = net(x)
                L0, _ = net0(x)
            size = tuple(L.shape[-2:])
            labels, valid = patch_labels(masks, size, trained.hparams.num_classes)
            clusters = net.probs(L, H).argmax(1).flatten(1)  # the predicted classes (over-clustered: merged)
            sources = [("trained L", L), ("random-init L", L0), ("RGB", F.adaptive_avg_pool2d(x, size))]
            if trained.reference is not None:  # the correspondence lever's own frozen initial encoder
                with torch.no_grad():
                    sources.append(("reference", trained.reference(net.inputs(x))))
            random_partner = random_partners(len(x), generator=g)
            for name, f in sources:
                rows.setdefault(name, []).append(score(f, labels, valid, clusters))
                rows.setdefault(f"{name}, random partner", []).append(score(f, labels, valid, clusters, random_partner))
        for name, rs in rows.items():
            mean = {k: sum(r[k] for r in rs) / len(rs) for k in keys}
            print(f"| {ckpt} | {name} | " + " | ".join(f"{mean[k]:.3f}" for k in keys) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = data_and_checkpoints(
        PROG, __doc__, help="MI checkpoints", hint="pass an MI checkpoint (RUN/checkpoints/*.ckpt)"
    ).parse_args(argv)
    run(PROG, table, args.data, args.ckpts)


if __name__ == "__main__":
    main()
