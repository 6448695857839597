"""The rules of the house that docs/ARCHITECTURE.md states, checked on the imports themselves."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "misseg"


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def offenders(room: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    root = PACKAGE / room
    for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
        bad = sorted(n for n in imports(path) if n.startswith(forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


def test_the_math_imports_no_data_lightning_or_hydra():
    forbidden = ("misseg.data", "pytorch_lightning", "lightning", "hydra", "omegaconf", "misseg.lit", "misseg.runs")
    assert offenders("objectives", forbidden) == {}
    assert offenders("metrics", forbidden) == {}
    for pure in ("probe.py", "crf.py", "shortcut.py", "spectrum.py", "ceiling.py"):
        assert offenders(f"diagnostics/{pure}", forbidden) == {}, pure


def test_baselines_and_models_do_not_import_entry_points_or_glue():
    entry = ("misseg.train", "misseg.evaluate", "misseg.predict", "misseg.export")
    assert offenders("baselines", entry) == {}
    assert offenders("models", (*entry, "misseg.lit", "misseg.runs", "misseg.data", "pytorch_lightning", "hydra")) == {}


def test_models_reach_into_objectives_only_with_a_reason_written_down():
    for path in sorted((PACKAGE / "models").glob("*.py")):
        if any(n.startswith("misseg.objectives") for n in imports(path)):
            text = path.read_text()
            line = next(i for i, s in enumerate(text.splitlines()) if "from misseg.objectives" in s)
            above = text.splitlines()[max(0, line - 3) : line]
            assert any(s.lstrip().startswith("#") for s in above), f"{path.name}: say why it imports objectives"


def test_the_package_root_holds_only_the_entry_points():
    assert sorted(p.stem for p in PACKAGE.glob("*.py")) == ["__init__", "evaluate", "export", "predict", "train"]
