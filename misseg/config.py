"""Where the Hydra configs live, for a source checkout and for an installed package alike."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def config_dir() -> str:
    """misseg/conf inside an installed wheel (pyproject maps conf/ there); else the repository's conf/."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"misseg configs not found next to {package}: reinstall misseg (pip install .)")


def output_or_default(output: str | None, default: str) -> str:
    """Hydra run dir of predict: the user's output=DIR when given (so no logs/predict/runs/<time> appears
    beside it), else the default timestamped run dir."""
    return str(Path(str(output)).expanduser()) if output not in (None, "") else default


# used by conf/predict.yaml's hydra.run.dir; registered on import, before @hydra.main resolves it
if not OmegaConf.has_resolver("misseg.output_or"):
    OmegaConf.register_new_resolver("misseg.output_or", output_or_default)
