"""Every command block of README.md, run as written on tiny data (issue 13).

What is extracted: every ```bash and ```python block of README.md; in a bash block every command (lines joined
at a trailing backslash; `# ...` comments dropped). Each block is one test, run top to bottom.

Placeholders (the only ones a README command may use) become tiny real things made here:
  DIR     a 3-class folder dataset (tests/conftest.py make_folder_dataset, 6 images)
  RUN     the run directory the block's latest `misseg.train` printed (`run directory: ...`); before any, the run of
          `python -m misseg.train experiment=folder data.root=DIR` (made once, with the tiny overrides below)
  CKPT    RUN/checkpoints/last.ckpt
  PHOTOS  a folder of photos (jpg, grey png, RGBA png)
  OUT     a new path, one per block (not created)
  python, .venv/bin/python: this interpreter.
Relative paths in the README are relative to the repository root. The commands run in a fresh workspace that
holds tiny stand-ins at the same relative paths: data/coco (a 3-image COCO 2017 tree: images, instances JSON,
stuffthingmaps) and ../shared/data/coco_stuff27 (a 2-image 27-class folder dataset).

Tiny budgets (the rule): a Hydra entry point that runs (misseg.train, evaluate, predict, export,
baselines.kmeans) gets
  - the budget keys trainer.max_steps=2, data.num_images=8, data.batch_size=4, hydra.sweeper.n_trials=2, and in a
    multirun (-m, hparams_search) report=false: no figures per sweep point, single runs keep theirs (they
    replace the command's own value, e.g. Optuna's n_trials=30),
  - conftest's TINY model and data.num_workers=0 / num_workers=0 (appended only where the command does not set
    the key),
each only where its composed config has the key (model.heads.width is not appended to model=iic). Nothing else
of a command changes; what was appended is written at the top of the command's log.

How commands run: `python -m MODULE ARGS` runs in a fork of one server process that imported torch and Lightning
once (tests/cli_server.py; a fresh process per command costs ~8 s of imports on 2 loaded cores, and there are ~40
commands), with OMP_NUM_THREADS=1 and no MISSEG_LOG_DIR / MISSEG_DATA_DIR from the caller. A ```python block runs
the same way, as a script. `make ...`
lines run as `make -n ...` in the repository (the targets and variables exist; installing or benchmarking is not
repeated here).

A block preceded by the line `<!-- readme-test: compose-only -->` needs what a test cannot have (a COCO
download, a GPU, SLURM, a W&B account, a weights file). Its commands are checked, not run: a Hydra entry point
is composed like the CLI's own pre-check (misseg.runs.validation.compose_or_error: every key, config group
option and type; for -m, every value of the sweep's group options and the first point's config); `bash FILE`
is `bash -n FILE`; any other line is `bash -n` (syntax). Nothing is skipped otherwise: a command that fails
fails its test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_server import CommandServer
from conftest import TINY, make_folder_dataset
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
COMPOSE_ONLY = "<!-- readme-test: compose-only -->"
PLACEHOLDERS = ("DIR", "RUN", "CKPT", "PHOTOS", "OUT")
HYDRA_ENTRY_POINTS = {
    "misseg.train": "train",
    "misseg.evaluate": "evaluate",
    "misseg.predict": "predict",
    "misseg.export": "export",
    "misseg.baselines.kmeans": "kmeans",
}
MULTIRUN_FLAGS = ("-m", "--multirun")
# replace the command's own value
BUDGET = ["trainer.max_steps=2", "data.num_images=8", "data.batch_size=4", "hydra.sweeper.n_trials=2"]
EXTRA = ["data.num_workers=0", "num_workers=0"]  # appended where the command does not set them (TINY too)
COMMAND_TIMEOUT_S = 240


# ---------------------------------------------------------------------------------------------------------
# README parsing
@dataclass
class Block:
    line: int  # line of the opening fence (1-based)
    lang: str  # bash | python
    text: str
    compose_only: bool

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang}{'-compose' if self.compose_only else ''}"

    def commands(self) -> list[str]:
        """Logical command lines: continuation lines joined, comment-only and blank lines dropped."""
        out, current = [], ""
        for raw in self.text.splitlines():
            current += raw
            if raw.rstrip().endswith("\\"):
                current = current.rstrip()[:-1] + " "
                continue
            if current.strip() and not current.strip().startswith("#"):
                out.append(current.strip())
            current = ""
        return out


def readme_blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text() if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        if fence.group(1) in ("bash", "python"):
            blocks.append(Block(i + 1, fence.group(1), "\n".join(lines[i + 1 : end]), previous == COMPOSE_ONLY))
        i = end + 1
    return blocks


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading NAME=value words of a shell command are its environment."""
    env = {}
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    return env, argv


def python_module(argv: list[str]) -> tuple[str, list[str]] | None:
    """`python -m MODULE ARGS` (or .venv/bin/python) -> (MODULE, ARGS); None for any other program."""
    if len(argv) >= 3 and argv[0] in ("python", ".venv/bin/python") and argv[1] == "-m":
        return argv[2], argv[3:]
    return None


def key_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def is_multirun(args: list[str]) -> bool:
    return any(a in MULTIRUN_FLAGS for a in args) or "hparams_search=optuna" in args


def with_budget(args: list[str], tiny: list[str]) -> tuple[list[str], list[str]]:
    """The command's args with the budget keys replaced, and the tiny overrides it does not set itself."""
    budget = [*BUDGET, *(["report=false"] if is_multirun(args) else [])]
    budget_keys = {key_of(b) for b in budget}
    kept = [a for a in args if key_of(a) not in budget_keys]
    own = {key_of(a) for a in kept}
    return kept, [*budget, *(t for t in [*tiny, *EXTRA] if key_of(t) not in own)]


def substitute(word: str, values: dict[str, str]) -> str:
    return re.sub(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", lambda m: values[m.group(1)], word)


def test_readme_conventions():
    """The rules the runner relies on: no <...> or [optional] parts or `...` in a command, only known programs
    in blocks that run, a compose-only marker only before a bash block."""
    blocks = readme_blocks()
    assert sum(b.lang == "bash" for b in blocks) >= 10
    markers = sum(line.strip() == COMPOSE_ONLY for line in README.read_text().splitlines())
    assert markers == sum(b.compose_only for b in blocks), "a compose-only marker line not right before ```bash"
    for block in blocks:
        if block.lang != "bash":
            continue
        for command in block.commands():
            where = f"README.md block at line {block.line}: {command!r}"
            words = shlex.split(command, comments=True)
            assert not re.search(r"<[^<>]*>", command.split(" #")[0]), f"{where}: a <placeholder>"
            assert not any(w.startswith("[") and not w.startswith("['") for w in words), f"{where}: [optional] part"
            assert "..." not in words and not any(w.endswith("=...") for w in words), f"{where}: `...`"
            _, argv = split_env(words)
            if not block.compose_only:
                module = python_module(argv)
                ok = argv[0] == "make" or (module is not None and module[0].startswith("misseg."))
                assert ok, f"{where}: runs neither misseg nor make; mark the block {COMPOSE_ONLY}"


def test_runner_parses_and_rewrites():
    text = "x\n\n<!-- readme-test: compose-only -->\n```bash\na=1 \\\n  b   # c\n# d\n```\n```python\nq\n```\n"
    blocks = readme_blocks(text)
    assert [(b.line, b.lang, b.compose_only) for b in blocks] == [(4, "bash", True), (9, "python", False)]
    assert blocks[0].commands() == ["a=1    b   # c"]
    args, appended = with_budget(["model.P=64", "hydra.sweeper.n_trials=30"], ["model.P=8", "model.d=2"])
    assert args == ["model.P=64"] and "hydra.sweeper.n_trials=2" in appended and "report=false" not in appended
    assert "report=false" in with_budget(["-m", "model.P=8,16", "report=true"], [])[1]
    assert "model.d=2" in appended and "model.P=8" not in appended
    values = dict(zip(PLACEHOLDERS, "abcde", strict=True))
    assert substitute("data.root=DIR", values) == "data.root=a" and substitute("RUN_DIR", values) == "RUN_DIR"
    assert substitute("RUN/checkpoints/x", values) == "b/checkpoints/x"


# ---------------------------------------------------------------------------------------------------------
# the commands, run by tests/cli_server.py (one process imports torch once, a fork runs each command)
def compose_command(module: str, args: list[str]):
    from misseg.runs.config import config_dir
    from misseg.runs.validation import check_group_choices, compose_or_error, sweep_overrides

    if any(a in MULTIRUN_FLAGS for a in args):
        sweep = sweep_overrides(args)
        assert sweep is not None, f"cannot list the sweep {args}"
        check_group_choices(config_dir(), sweep[1])
        args = sweep[0]
    return compose_or_error(config_dir(), HYDRA_ENTRY_POINTS[module], list(args))


def compose_in_child(module: str, args: list[str]) -> None:
    """A compose-only command (in the forked child)."""
    print(f"$ compose {module} {shlex.join(args)}", flush=True)
    compose_command(module, args)
    print("composed", flush=True)


def run_with_tiny(module: str, args: list[str], tiny: list[str]) -> None:
    """`python -m module args` plus the tiny overrides its composed config has a key for (in the forked child)."""
    from cli_server import run_as_main
    from omegaconf import OmegaConf

    cfg = compose_command(module, args)
    missing = object()
    appended = [t for t in tiny if OmegaConf.select(cfg, key_of(t), default=missing) is not missing]
    print(f"$ {shlex.join(['python', '-m', module, *args])}", flush=True)
    print(f"# tiny overrides appended: {shlex.join(appended)}", flush=True)
    run_as_main(module, [*args, *appended])


class Server:
    """The README's command server: W&B off, one thread per command, no MISSEG_* paths from the caller."""

    def __init__(self, root: Path):
        self.env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        self.env.pop("MISSEG_LOG_DIR", None)
        self.env.pop("MISSEG_DATA_DIR", None)
        self.server = CommandServer(root, env=self.env)
        self.count = 0
        self.last_start = 0
        self.logs = root / "logs"
        self.logs.mkdir()

    def run(self, name: str, job: dict) -> tuple[int, str, float]:
        self.count += 1
        while int(time.time()) == self.last_start:  # Hydra names a default run dir to the second
            time.sleep(0.05)
        self.last_start = int(time.time())
        log = str(self.logs / f"{self.count:03d}-{name}.log")
        env = {**self.env, **job.pop("env", {})}
        job = {**job, "env": env, "stdout": log, "stderr": log, "timeout": COMMAND_TIMEOUT_S}
        rc, _, seconds = self.server.run(job)  # a timeout is exit status 124, as coreutils' timeout reports it
        return rc, Path(log).read_text(errors="replace"), seconds

    def close(self) -> None:
        self.server.close()


def tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def printed_run_dir(log: str) -> str | None:
    found = re.findall(r"^run directory: (.+)$", log, re.M)
    return found[-1].strip() if found else None


def make_coco_tree(root: Path) -> Path:
    """3 images of COCO 2017 (2 train, 1 val) that every selection rule keeps: >= 360 px, 80 % stuff in
    stuffthingmaps (sky-other, wall-brick), a person polygon over half of each image in instances_*.json."""
    rng = np.random.default_rng(0)
    h, w = 400, 380
    fine = np.full((h, w), 255, np.uint8)
    fine[:320] = np.where(np.arange(w) < w // 2, 156, 170)[None]  # fine label = category id - 1
    fine[320:] = 0  # person
    person = [[0, 0, w, 0, w, h // 2, 0, h // 2]]  # a polygon: x, y pairs
    ids = {"train2017": [1, 2], "val2017": [3]}
    (root / "annotations").mkdir(parents=True)
    for split, split_ids in ids.items():
        (root / split).mkdir()
        (root / "stuffthingmaps_trainval2017" / split).mkdir(parents=True)
        images, anns = [], []
        for i in split_ids:
            name = f"{i:012d}"
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / split / f"{name}.jpg")
            Image.fromarray(fine).save(root / "stuffthingmaps_trainval2017" / split / f"{name}.png")
            images.append({"id": i, "file_name": f"{name}.jpg", "height": h, "width": w})
            anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "segmentation": person})
        data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def make_27_folder(root: Path) -> Path:
    from misseg.data.coco import COARSE27

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(COARSE27) + "\n")
    values = np.array([*range(27), 255], np.uint8)
    mask = np.repeat(values, 8)[None].repeat(200, 0)  # 200 x 224: 8-px bands of every class and ignore
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (*mask.shape, 3), dtype=np.uint8)).save(root / "images" / f"{i}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


class ReadmeRunner:
    def __init__(self, root: Path):
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        self.dir = make_folder_dataset(root / "folder_dataset")
        self.photos = root / "photos"
        self.photos.mkdir()
        rng = np.random.default_rng(2)
        Image.fromarray(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(self.photos / "a.jpg")
        Image.fromarray(rng.integers(0, 255, (50, 80), dtype=np.uint8)).save(self.photos / "grey.png")
        Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8)).save(self.photos / "rgba.png")
        make_coco_tree(self.work / "data" / "coco")
        make_27_folder(root / "shared" / "data" / "coco_stuff27")
        self.server = Server(root)
        self._first_run: str | None = None
        self.times: list[tuple[str, float]] = []

    def first_run(self) -> str:
        """RUN before a block trains: `python -m misseg.train experiment=folder data.root=DIR` (tiny)."""
        if self._first_run is None:
            rc, log, _ = self.python("first-run", "misseg.train", ["experiment=folder", f"data.root={self.dir}"], {})
            assert rc == 0, tail(log)
            self._first_run = printed_run_dir(log)
        return self._first_run

    def python(self, name: str, module: str, args: list[str], env: dict, compose: bool = False):
        if compose:
            job = {"kind": "call", "function": "test_readme:compose_in_child", "args": [module, args]}
        elif module in HYDRA_ENTRY_POINTS and "--cfg" not in args:
            args, tiny = with_budget(args, TINY)
            job = {"kind": "call", "function": "test_readme:run_with_tiny", "args": [module, args, tiny]}
        else:
            job = {
                "kind": "module",
                "module": module,
                "args": args,
                "header": [f"$ {shlex.join(['python', '-m', module, *args])}"],
            }
        rc, log, seconds = self.server.run(name, {**job, "cwd": str(self.work), "env": env})
        self.times.append((f"{module} {shlex.join(args)}"[:100], seconds))
        return rc, log, seconds

    def run_block(self, block: Block) -> None:
        run: list[str] = []  # the block's latest run directory

        def values() -> dict[str, str]:
            current = run[-1] if run else self.first_run()
            return {
                "DIR": str(self.dir),
                "RUN": current,
                "CKPT": f"{current}/checkpoints/last.ckpt",
                "PHOTOS": str(self.photos),
                "OUT": str(self.root / f"out-{block.line}"),
            }

        def resolve(word: str) -> str:
            return substitute(word, values()) if re.search(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", word) else word

        name = f"L{block.line}"
        if block.lang == "python":
            code = re.sub(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", lambda m: values()[m.group(1)], block.text)
            job = {"kind": "python", "code": code, "cwd": str(self.work), "header": [f"$ python <<EOF\n{code}\nEOF"]}
            rc, log, _ = self.server.run(name, job)
            assert rc == 0, f"README.md python block at line {block.line}:\n{tail(log)}"
            return
        for command in block.commands():
            where = f"README.md line {block.line}: {command}"
            env, argv = split_env(shlex.split(command, comments=True))
            argv = [resolve(w) for w in argv]
            module = python_module(argv)
            if argv[0] == "make":
                done = subprocess.run(["make", "-n", *argv[1:]], cwd=REPO, capture_output=True, text=True)
                assert done.returncode == 0, f"{where}\n{done.stdout}{done.stderr}"
            elif block.compose_only and (module is None or module[0] not in HYDRA_ENTRY_POINTS):
                assert module is None, f"{where}: only Hydra entry points can be composed; run it in a block"
                script = argv[1] if argv[0] == "bash" and len(argv) == 2 else None  # `bash FILE`: FILE's syntax
                check = ["bash", "-n", script] if script else ["bash", "-n", "-c", command]
                done = subprocess.run(check, cwd=REPO, capture_output=True, text=True)
                assert done.returncode == 0, f"{where}\n{done.stderr}"
            else:
                rc, log, _ = self.python(name, module[0], module[1], env, compose=block.compose_only)
                assert rc == 0, f"{where}\nexit status {rc}; log:\n{tail(log)}"
                if module[0] == "misseg.train" and not block.compose_only and not is_multirun(module[1]):
                    run_dir = printed_run_dir(log)
                    assert run_dir, f"{where}: printed no `run directory:`\n{tail(log)}"
                    assert (Path(self.work) / run_dir / "checkpoints" / "last.ckpt").is_file(), where
                    assert (Path(self.work) / run_dir / "metrics.json").is_file(), where
                    run.append(str(Path(self.work) / run_dir))

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = ReadmeRunner(tmp_path_factory.mktemp("readme"))
    yield r
    r.close()
    total = sum(s for _, s in r.times)
    print(f"\nREADME commands: {len(r.times)}, {total:.0f} s in commands; slowest:")
    for name, s in sorted(r.times, key=lambda t: -t[1])[:8]:
        print(f"  {s:6.1f} s  {name}")


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: b.id)
def test_readme_block(block: Block, runner: ReadmeRunner):
    runner.run_block(block)
