"""What a run prints: library chatter a user cannot act on is silenced here, in one place.

Kept: everything that asks for an action (a GPU present but unused, too few DataLoader workers, a
monitored metric missing) and what a user needs to know (restored checkpoint, why fit stopped).
"""

from __future__ import annotations

import logging
import re
import warnings

# warnings (message regexes) that carry no action for a misseg user
QUIET_WARNINGS = (
    # an epoch shorter than log_every_n_steps: the epoch-level metrics are logged anyway
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    # Lightning internals calling a deprecated torch API
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # resuming into the run's own folders (misseg's run-dir policy decides what may be reused)
    r"Checkpoint directory .* exists and is not empty",
    r"Experiment logs directory .* exists and is not empty",
)
# log records (message regexes) of Lightning's info logger that carry no action
QUIET_LOGS = (
    r"💡 Tip",
    r"^Tip:",
    r"GPU available: False, used: False",
    r"TPU available: False",
    r"HPU available: False",
    r"^Seed set to",
    r"^LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES",
)
QUIET_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_fabric.utilities.seed",
    "lightning.fabric.utilities.seed",
    "pytorch_lightning.accelerators.cuda",
    "lightning.pytorch.accelerators.cuda",
)


class _DropMatching(logging.Filter):
    def __init__(self, patterns: tuple[str, ...]) -> None:
        super().__init__()
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


_FILTER = _DropMatching(QUIET_LOGS)


def quiet_libraries() -> None:
    """Install the warning filters and log filters above (idempotent; call at the start of an entry point)."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=f".*{pattern}")
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
