"""Where the Hydra configs live, for a source checkout and for an installed package alike."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """misseg/conf inside an installed wheel (pyproject maps conf/ there); else the repository's conf/."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"misseg configs not found next to {package}: reinstall misseg (pip install .)")
