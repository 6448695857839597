"""The objectives (mi.py, iic.py). The choices of the MI objective's options live here, torch-free, so the config
checks (runs/validation.py) can name them without importing the loss code."""

# this process's batch | all DDP ranks | levers (mi.py): the image's other positions (jsd_own_image) | both, half each
# | the image's K high-level features H_k, each with weight 1/K (jsd_uniform_heads) | own_image with each of the image's
# clusters weighing the same (jsd_own_image_balanced) | mixed with each half's clusters weighing the same
NEGATIVES = ("local", "global", "own_image", "mixed", "heads", "own_image_balanced", "mixed_balanced")
CORRESPONDENCE_PARTNERS = ("nearest", "random")  # the correspondence lever's other image (objectives/mi.py)
NEGATIVE_POSITIONS = ("same", "shuffled")  # the thesis's E_marginal | a lever (objectives/mi.py, jsd_bound)
CRITICS = ("dot", "affine", "scaled")  # eq. 4.12's T = <L, S> | T = a <L, S> + b, a, b learned | T = tau <L, S> (mi.py)


def check_own_image(negatives: str, negative_positions: str) -> None:
    """ValueError for shuffled positions with negatives that have no positions to shuffle: own_image already pairs
    every two positions, heads pairs each position with the K high-level features."""
    if negatives in ("own_image", "own_image_balanced", "mixed_balanced", "heads") and negative_positions != "same":
        why = {
            "own_image": "the own-image negatives already pair each position with every other one",
            "own_image_balanced": "the own-image negatives already pair each position with every other one",
            "mixed_balanced": "its other-image half is balanced per position, which a shuffle would mix",
            "heads": "the negatives are the K high-level features H_k, not positions",
        }[negatives]
        raise ValueError(  # the config check's message too (runs/validation.py)
            f"model.objective.negative_positions={negative_positions} with model.objective.negatives={negatives}: "
            f"{why}; use negative_positions=same"
        )
