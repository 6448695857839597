"""Over-clustered centroid heads: which label-free signal merges the centres into the classes? (section 58)

Usage: python experiments/scale/merge_signals.py DATA_DIR CKPT [CKPT ...]   (one markdown row per checkpoint)
Section 57: on COCO-Stuff-15 the co-assignment merge joins centres of different classes about half the time, where
the labels' majority merge of the same centres would score 0.24-0.28. Each rule below merges the checkpoint's centres
into K classes without labels, read after training on the set's eval view (transductive, every position), and is
scored by the whole-set Hungarian mIoU of the merged prediction and its merge precision (centre_split.py's; labels
read only to score):
- run: the checkpoint's own groups (the co-assignment of the training batches, its running mean);
- co-assignment: `coassignment_groups` of A = E[p'_k(ij) p'_l(ij)] over the set's positions (the same rule read here);
- centres: `merge_centres`, average linkage of the H_k by cosine (where the centres lie);
- correspondence: `coassignment_groups` of B = E[p'_k(ij) p'_l(m(ij))] symmetrised, m(ij) the corresponding
  position of the closest other image (`correspondences` on the frozen body's map, the features the stuff-15 setting's
  correspondence term reads): two centres the same content takes in two images join, whatever each image's own split;
- co-assignment + correspondence: the same rule on A + B (both joint distributions over pairs of centres, sum 1 each);
- correspondence, batches: B from correspondences within seeded batches of 16 (the partner the training batch offers,
  what a rule computed during training could read) instead of the closest of the whole set.
The last column is the labels' majority merge (a ceiling for any merge rule, centre_split.py's).
"""

from __future__ import annotations

from typing import Any

import torch
from _cli import body_maps, checkpoint_script, eval_images  # experiments/scale/_cli.py
from centre_split import centre_probs, merge_precision, merged_maps, set_coassignment

from misseg.diagnostics.shortcut import seeded_index_batches
from misseg.lit.build import load_module
from misseg.metrics.matching import confusion_matrix, match_and_score
from misseg.models.centroids import coassignment_groups, merge_centres
from misseg.models.segmenter import predict_from_probs
from misseg.objectives.mi import correspondences
from misseg.runs.errors import ConfigError

PROG = "experiments/scale/merge_signals.py"
RULES = ("run", "co-assignment", "centres", "correspondence", "co-assignment + correspondence")
RULES += ("correspondence, batches",)
KEYS = tuple(f"{r} {what}" for r in RULES for what in ("mIoU", "precision")) + ("ceiling mIoU",)


def correspondence_joint_counts(p: torch.Tensor, body: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    """p (N, C, U, V) p' over the centres, body (N, Q, U, V) the frozen body's map -> B (C, C), symmetric, sum 1:
    E[p'_k(ij) p'_l(m(ij))] over every position ij of every image, m from `correspondences` over the whole set
    (batch=None) or within seeded batches of `batch` images, then (B + B^T) / 2."""
    N, C = p.shape[:2]
    index = [torch.arange(N)] if batch is None else list(seeded_index_batches(N, batch, 0))
    B = p.new_zeros(C, C, dtype=torch.float64)
    count = 0
    for idx in index:
        partner, match = correspondences(body[idx])  # (b,), (b, UV) flat into the partner's positions
        pa = p[idx].flatten(2).double()  # (b, C, UV)
        pb = pa[partner].gather(2, match[:, None, :].expand(-1, C, -1))  # p' at each position's match
        B += torch.einsum("bku,blu->kl", pa, pb)
        count += pa.shape[0] * pa.shape[2]
    B /= count
    return (B + B.T) / 2


def score(ckpt: str, data: Any) -> dict[str, float]:
    """KEYS for one checkpoint on a set's eval view."""
    module = load_module(ckpt).eval()
    heads = module.model.heads
    if getattr(heads, "groups", None) is None:
        raise ConfigError(f"{ckpt}: not an over-clustered centroid run (model.heads.overcluster > 1); pass one")
    K, C = module.model.K, len(heads.groups)
    x, masks, _ = eval_images(data)
    size = x.shape[-2:]
    p = centre_probs(module, x)
    body = body_maps(module, x)
    if body.shape[-2:] != p.shape[-2:]:
        raise ConfigError(f"{ckpt}: the body's map {tuple(body.shape[-2:])} is not on L's grid {tuple(p.shape[-2:])}")
    A = set_coassignment(p)
    B = correspondence_joint_counts(p, body)
    H = torch.nn.functional.layer_norm(heads.centroids, (heads.P,))
    groups = {
        "run": heads.groups,
        "co-assignment": coassignment_groups(A, K),
        "centres": merge_centres(H, K),
        "correspondence": coassignment_groups(B, K),
        "co-assignment + correspondence": coassignment_groups(A + B, K),
        "correspondence, batches": coassignment_groups(correspondence_joint_counts(p, body, batch=16), K),
    }
    num_classes = data.num_classes
    centres = confusion_matrix(predict_from_probs(p, size)[0], masks, C, num_classes)
    out = {"ceiling mIoU": match_and_score(centres, "majority")["miou"]}
    for rule, g in groups.items():
        merged = confusion_matrix(merged_maps(p, g, K, size), masks, K, num_classes)
        out[f"{rule} mIoU"] = match_and_score(merged)["miou"]
        out[f"{rule} precision"] = merge_precision(centres, g)
    return out


main = checkpoint_script(PROG, __doc__, KEYS, score)


if __name__ == "__main__":
    main()
