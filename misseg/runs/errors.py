"""Errors a user can fix, and how the entry points report them: one line on stderr, an exit status, no traceback.

| exit | error                                 |
|------|---------------------------------------|
| 2    | ConfigError (incl. RunDirError), DatasetError, OutputExistsError, InputError: fix the key / file named |
| 3    | NonFiniteLossError: training diverged; the last good checkpoint is kept |
| 143  | Interrupted: SIGTERM (e.g. SLURM preemption); a checkpoint was saved, resume with ckpt_path=last |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """Base of the errors reported as one `error: ...` line; `exit_code` is the process exit status."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config key has a bad value; the message names the key, the value and the allowed range."""


class RunDirError(ConfigError):
    """The run directory holds a previous run and resuming was not asked for."""


class DatasetError(UserError, ValueError):
    """A dataset on disk is missing or malformed; the message names the path and what to do."""


class OutputExistsError(UserError, FileExistsError):
    """An output file (prediction, ONNX model) exists already; nothing is overwritten, nothing was written."""


class NonFiniteLossError(UserError, FloatingPointError):
    """The loss (or a weight about to be checkpointed) is NaN/inf; training stops before saving it."""

    exit_code = 3


class Interrupted(UserError):
    """SIGTERM received: a checkpoint was saved and the run stopped on purpose."""

    exit_code = 143  # 128 + SIGTERM, the shell's convention, so schedulers see "not finished"


def one_line(message: str) -> str:
    return " ".join(str(message).split())


@contextmanager
def reported_errors(prefix: str = "error") -> Iterator[None]:
    """Turn a UserError into `prefix: message` on stderr and SystemExit(exit_code) (SystemExit passes Hydra)."""
    try:
        yield
    except UserError as e:
        label = "interrupted" if isinstance(e, Interrupted) else prefix
        print(f"{label}: {one_line(str(e))}", file=sys.stderr, flush=True)
        raise SystemExit(e.exit_code) from None


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse for the non-Hydra CLIs and the experiment scripts: a bad or missing argument gets the one line
    `PROG: error: MESSAGE (see PROG --help)` and exit 2, not argparse's usage block (subparsers are made of the
    same class: argparse's add_subparsers defaults parser_class to type(self))."""

    def error(self, message: str):  # argparse's hook; must not return
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr, flush=True)
        raise SystemExit(2)


def existing_dir(hint: str) -> Callable[[str], str]:
    """An argparse `type=` for a folder that must exist: the value unchanged, or `VALUE: no such directory; HINT`
    (argparse prefixes the argument's name and the parser prints it as its one line)."""
    return _existing(Path.is_dir, "directory", hint)


def existing_file(hint: str) -> Callable[[str], str]:
    """An argparse `type=` for a file that must exist (see existing_dir)."""
    return _existing(Path.is_file, "file", hint)


def _existing(test: Callable[[Path], bool], what: str, hint: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not test(Path(value)):
            raise argparse.ArgumentTypeError(f"{value}: no such {what}; {hint}")
        return value

    check.__name__ = what  # argparse names the type in its fallback message
    return check


@contextmanager
def sigterm_raises(message: str) -> Iterator[None]:
    """Inside the block, SIGTERM raises Interrupted(message) instead of killing the process (exit -15, no
    message); the previous handler comes back on exit. For the work after trainer.fit (final evaluation,
    report), where Lightning's own SIGTERM handling no longer applies. Main thread only (Python's rule)."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(message)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
