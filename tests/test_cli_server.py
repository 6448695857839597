"""tests/cli_server.py: a command run in a fork of the server ends as the same command in a fresh interpreter."""

import os
import subprocess
import sys

import pytest
from conftest import run_cli

MODULES = {
    "streams": "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)\n",
    "message": "import sys\nsys.exit('bad value: x')\n",
    "raises": "raise ValueError('boom')\n",
    "argv_env": "import os, sys\ne = os.environ\nprint(sys.argv[1:], os.getcwd(), e.get('ONLY_HERE'), e.get('GONE'))\n",
    # a process pool left running at exit, as misseg.diagnostics.crf's crf_workers pool is
    "pool": (
        "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor\n"
        "if __name__ == '__main__':  # the forkserver's workers import the main module\n"
        "    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('forkserver'))\n"
        "    print(sum(pool.map(abs, [-1, -2, 3])))\n"
    ),
    # a thread still running at exit is joined, as the interpreter does (a child that skipped it lost the print,
    # and misseg.evaluate crf_workers=2 hung at exit: concurrent.futures stops its pools in that step)
    "thread": "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.5), print('joined'))).start()\n",
    # the module's globals live until the exit (runpy.run_module's temporary module dropped them first: "pool"'s
    # executor was then collected while the exit woke it, and 2 times in 1,660 runs the atexit handlers were skipped)
    "globals": (
        "import weakref\nclass Box:\n    pass\nbox = Box()\n"
        "weakref.finalize(box, print, 'collected before the exit').atexit = False\n"
    ),
    # an exception in the exit's thread join is reported, and the atexit handlers still run
    "join_raises": (
        "import atexit, threading\natexit.register(print, 'atexit ran')\n"
        "def boom():\n    raise RuntimeError('in the join')\nthreading._register_atexit(boom)\n"
    ),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_forked_command_ends_as_a_fresh_interpreter_does(tmp_path, name):
    (tmp_path / f"{name}.py").write_text(MODULES[name])
    env = dict(os.environ, ONLY_HERE="1")
    env.pop("GONE", None)
    os.environ["GONE"] = "set in the test process only"
    try:
        forked = run_cli("-m", name, "a b", cwd=tmp_path, env=env, timeout=60)
        fresh = subprocess.run(
            [sys.executable, "-m", name, "a b"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        del os.environ["GONE"]
    assert forked.args == [sys.executable, "-m", name, "a b"]
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    assert forked.stderr == fresh.stderr  # tracebacks included: runpy's frames in both, none of the server's
    expected = {
        "streams": (3, "out\n", "err\n"),
        "message": (1, "", "bad value: x\n"),
        "raises": (1, "", None),
        "argv_env": (0, f"['a b'] {tmp_path} 1 None\n", ""),
        "pool": (0, "6\n", ""),
        "thread": (0, "joined\n", ""),
        "globals": (0, "", ""),
        "join_raises": (0, "atexit ran\n", None),
    }[name]
    assert forked.returncode == expected[0] and forked.stdout == expected[1]
    assert expected[2] is None or forked.stderr == expected[2]
    assert name != "raises" or forked.stderr.endswith("ValueError: boom\n")


def test_a_command_past_its_timeout_is_stopped_and_raises_timeout_expired(tmp_path):
    """As subprocess.run(timeout=...) does (with what it printed as text); a command that exits 124 itself is not
    taken for one that timed out."""
    (tmp_path / "sleeper.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run_cli("-m", "sleeper", cwd=tmp_path, timeout=2)
    assert info.value.timeout == 2 and info.value.output == "started\n"
    (tmp_path / "exits124.py").write_text("import sys\nsys.exit(124)\n")
    assert run_cli("-m", "exits124", cwd=tmp_path, timeout=60).returncode == 124
