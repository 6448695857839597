"""Run `python -m MODULE ARGS` in a fork of one process that imported torch and Lightning once.

A fresh interpreter spends ~8 s importing torch, Lightning and Hydra on 2 loaded cores, and the suite starts ~80
commands (tests/conftest.py run_cli, tests/test_readme.py). This file, run as `python tests/cli_server.py
--serve`, imports them once and forks a child per command. The child is `python -m` as far as the commands here
can tell: its own argv, cwd, os.environ (replaced, not merged), stdin from /dev/null, stdout and stderr to files,
the module run as a __main__ that lives until the exit (`run_as_main`), the interpreter's exit (non-daemon threads
joined, then the atexit handlers), and the exit status Python gives (SystemExit's code; 1 and a traceback for an
uncaught exception).
What the child shares with the server, and so with every other command: the modules imported before the fork, what
the environment set at the server's start-up (sys.path from PYTHONPATH, OMP/MKL thread counts, PYTHONHASHSEED), and
the server's `random` / NumPy global state (the CLIs seed their own). The server imports and runs no torch op, so
torch's OpenMP pool does not exist yet when it forks (the imports leave two idle helper threads, which a fork does
not copy).

Not for what needs a real process: signals and kill -9 (tests/test_resume_e2e.py starts its own).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRELOAD = (
    "torch",
    "torchvision",
    "pytorch_lightning",
    "hydra",
    "misseg.lit.mi",
    "misseg.lit.iic",
    "misseg.data.datamodule",
    "misseg.viz.report",
    "misseg.deploy.inference",
)
TIMED_OUT = 124  # the exit status reported for a command stopped at its timeout (as coreutils' timeout)


class CommandServer:
    """The parent side: one server process; `run` sends a job and waits for its exit status."""

    def __init__(self, root: Path, env: dict[str, str] | None = None):
        self.root = Path(root)
        self.log = open(self.root / "server.log", "w")  # noqa: SIM115 (lives as long as the server)
        server_env = dict(os.environ if env is None else env, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=server_env,
            cwd=REPO,
        )

    def run(self, job: dict) -> tuple[int, bool, float]:
        """job: kind ("module": module, args; "python": code; "call": function "file_stem:name", args), cwd,
        env (the child's whole environment), stdout, stderr (paths; the same path for one log), timeout,
        header (lines printed first). -> (exit status, whether it was stopped at its timeout, seconds)."""
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, f"the command server died: {(self.root / 'server.log').read_text()[-3000:]}"
        result = json.loads(reply)
        return result["rc"], result["timed_out"], result["seconds"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.log.close()


class ModuleRunner:
    """`python -m MODULE ARGS` through one lazily started server, returning what subprocess.run would."""

    def __init__(self):
        self.server: CommandServer | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.count = 0

    def __call__(
        self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        if self.server is not None and self.server.proc.poll() is not None:  # it died: the next command gets a new one
            self.close()
        if self.server is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="misseg-cli-")
            self.server = CommandServer(Path(self.tmp.name))
            atexit.register(self.close)
        self.count += 1
        out, err = (Path(self.tmp.name) / f"{self.count:04d}.{s}" for s in ("out", "err"))
        job = {"kind": "module", "module": module, "args": list(args), "cwd": str(cwd), "env": env}
        rc, timed_out, _ = self.server.run({**job, "stdout": str(out), "stderr": str(err), "timeout": timeout})
        argv = [sys.executable, "-m", module, *args]
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        out.unlink()
        err.unlink()
        if timed_out:
            raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
        return subprocess.CompletedProcess(argv, rc, stdout, stderr)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.tmp.cleanup()
            self.server = None


# ---------------------------------------------------------------------------------------------------------
# the server side (this file run as a script)
def run_as_main(module: str, args: list[str]) -> None:
    """`python -m MODULE ARGS` in this process: the module runs in a new __main__ that stays in sys.modules up to the
    exit, as the interpreter's does. (runpy.run_module's temporary module is dropped when it returns, and with it what
    the command left in its globals: a ProcessPoolExecutor collected there closes its wake-up pipe while the exit's
    concurrent.futures._python_exit writes to it, unguarded in Python 3.11; 2 times in 1,660 runs under load the write
    raised EBADF, the atexit handlers were skipped, and the tracker reported the pool's semaphores as leaked.)"""
    sys.modules["__main__"] = types.ModuleType("__main__")
    sys.argv = [module, *args]
    runpy._run_module_as_main(module)  # what `python -m` calls (Modules/main.c): argv[0], its error message


def _print_traceback(e: BaseException) -> None:
    """e's traceback as the interpreter prints it: from the first frame that is not this file's (runpy's, the
    command's, threading's); all of it when every frame is this file's (the server's own error)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb or e.__traceback__)


def _exit() -> None:
    """The interpreter's exit: join the non-daemon threads (concurrent.futures shuts its pools down there, before
    multiprocessing's atexit handler joins their processes), then the atexit handlers, which run even when the join
    raises (the interpreter reports that as an ignored exception and goes on)."""
    try:
        threading._shutdown()
    except BaseException as e:
        print(f"Exception ignored in: {threading!r}", file=sys.stderr)
        _print_traceback(e)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()


def _redirect(job: dict) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out = os.open(job["stdout"], flags, 0o644)
    err = out if job["stderr"] == job["stdout"] else os.open(job["stderr"], flags, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)


def _child(job: dict) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # the server can stop the command and whatever it started
        _redirect(job)
        function = None
        if job["kind"] == "call":  # imported before sys.path[0] becomes the command's cwd
            stem, _, name = job["function"].partition(":")
            function = getattr(importlib.import_module(stem), name)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        sys.path[0] = job["cwd"]  # as `python -m` does
        for line in job.get("header", []):
            print(line, flush=True)
        if job["kind"] == "python":  # as `python -c`: in a __main__ that lives until the exit
            sys.modules["__main__"] = main = types.ModuleType("__main__")
            exec(compile(job["code"], "<string>", "exec"), main.__dict__)
        elif job["kind"] == "call":
            function(*job["args"])
        else:
            run_as_main(job["module"], job["args"])
        code = 0
    except SystemExit as e:  # what the interpreter does with it
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
    except BaseException as e:
        _print_traceback(e)
    finally:
        try:
            _exit()
        finally:
            os._exit(code)


def _serve() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing but replies on the pipe
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.time()
        pid = os.fork()
        if pid == 0:
            _child(job)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc, timed_out = os.waitstatus_to_exitcode(status), False
                break
            if time.time() - start > job.get("timeout", 300):
                os.killpg(pid, 9)
                os.waitpid(pid, 0)
                rc, timed_out = TIMED_OUT, True
                break
            time.sleep(0.02)
        reply.write(json.dumps({"rc": rc, "timed_out": timed_out, "seconds": round(time.time() - start, 2)}) + "\n")
        reply.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
