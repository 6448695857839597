"""The objectives (mi.py, iic.py). The choices of the MI objective's options live here, torch-free, so the config
checks (runs/validation.py) can name them without importing the loss code."""

NEGATIVES = ("local", "global", "own_image")  # this process's batch | all DDP ranks | a lever (mi.py, jsd_own_image)
CORRESPONDENCE_PARTNERS = ("nearest", "random")  # the correspondence lever's other image (objectives/mi.py)
NEGATIVE_POSITIONS = ("same", "shuffled")  # the thesis's E_marginal | a lever (objectives/mi.py, jsd_bound)
CRITICS = ("dot", "affine", "scaled")  # eq. 4.12's T = <L, S> | T = a <L, S> + b, a, b learned | T = tau <L, S> (mi.py)
