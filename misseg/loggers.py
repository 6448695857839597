"""Logger factories: W&B that never prompts for a login."""

from __future__ import annotations

import os
from pathlib import Path


def wandb_credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def make_wandb_logger(offline: bool | None = None, **kwargs):
    """WandbLogger, offline unless credentials exist (or WANDB_MODE says otherwise); never blocks on input."""
    from pytorch_lightning.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    if offline is None:
        offline = os.environ.get("WANDB_MODE", "") != "online" and not wandb_credentials_present()
    if offline and os.environ.get("WANDB_MODE") != "disabled":
        os.environ["WANDB_MODE"] = "offline"
    Path(kwargs.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=offline, **kwargs)
