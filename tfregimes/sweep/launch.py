"""How a point's `python -m tfregimes.train` / `tfregimes.evaluate` process starts: fresh, or preloaded.

A fresh process (`subprocess.Popen([python, -m, MODULE, ...])`) spends about 5 s of CPU importing TensorFlow and
Keras before it reads a flag, more than a small point's whole training. A preloaded one is forked from a server
process that imported them once (multiprocessing's forkserver with a preload list) and then runs the module as
`__main__` with the same arguments, working directory, environment and output files. It is still its own process:
its own globals, flags and TensorFlow runtime (the server imports TensorFlow but never runs an op), its exit status,
and the same death with the sweep (a parent-death signal; the server exits when the sweep does). A preloaded process
that starts preloaded processes of its own (a sweep or a reproduction script run preloaded, as the tests run them)
has them forked by the server it came from rather than starting a second server that imports TensorFlow again; each
dies with the process that started it.

Preloading is for CPU machines: CUDA cannot be used in a process forked from one that has touched the driver, so a
point that is given a GPU, or any point on a machine with an NVIDIA device, starts fresh.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver as forkserver
import multiprocessing.resource_tracker as resource_tracker
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

# The heavy imports every point shares; none defines an absl flag, so each CLI still defines exactly its own.
PRELOAD = ("tfregimes.sweep.preload",)
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """If the parent dies, even by SIGKILL, the kernel kills this process too (Linux), so a rerun of the sweep never
    finds a stale trainer still writing the run directory."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def die_with(pid: int) -> None:
    """Kills this process when process `pid` ends (a Linux pidfd watched by a thread): a preloaded child's parent is
    the server, which outlives the sweep when the server is shared (`_serve_children_from_this_server`)."""
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:  # Gone already.
        os.kill(os.getpid(), signal.SIGKILL)
        return
    except OSError:  # No pidfd (Linux before 5.3): the parent-death signal alone, enough unless the server is shared.
        return

    def watch() -> None:
        select.select([watched], [], [])  # Readable once the process has ended.
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name=f"die-with-{pid}", daemon=True).start()


def preloading_possible(env: dict[str, str]) -> bool:
    """A fork of the preloaded server can run this point: Linux, no GPU given to it, no NVIDIA device here."""
    gpu_given = env.get("CUDA_VISIBLE_DEVICES", "") not in ("", "-1")
    return sys.platform.startswith("linux") and not gpu_given and not glob.glob("/dev/nvidia[0-9]*")


@functools.cache
def _preloaded_context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


# A forkserver child's exit status is 4 bytes on its sentinel, read once. multiprocessing reads it in `join` and also
# in every `Process.start()` (which polls the live children); two threads reading at once leave one at EOF, which
# multiprocessing reports as exit status 255 (a finished point recorded as failed). Every read goes through this.
_STATUS_LOCK = threading.Lock()


class PreloadedProcess:
    """A forked child running `python -m MODULE ARGV`, with the part of `subprocess.Popen`'s interface the sweep
    and the tests use (wait, terminate, kill)."""

    def __init__(self, module: str, argv: Sequence[str], *, cwd: str, env: dict[str, str], log: IO,
                 err: IO | None = None):
        paths = (os.path.abspath(log.name), os.path.abspath((err or log).name))  # The child changes directory.
        with _STATUS_LOCK:  # start() polls every live child (multiprocessing's _cleanup).
            self._process = _preloaded_context().Process(
                target=_run_module, args=(module, list(argv), cwd, env, paths, os.getpid()), name=f"point-{module}",
                daemon=False)
            self._process.start()

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with _STATUS_LOCK:
                code = self._process.exitcode  # Reads the status once it is there; kept after that.
            if code is not None:
                return code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"preloaded {self._process.name}", timeout)
            # Readable when the status arrives; not read here, so no other thread can be left without it.
            multiprocessing.connection.wait([self._process.sentinel], left)

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def _serve_children_from_this_server() -> None:
    """In a child of the server: the preloaded processes this one starts are forked by the same server (its address
    is inherited) instead of a new server that would import TensorFlow again (multiprocessing's `ensure_running`
    starts one in every process that did not start it itself).

    The server stays up while any process holds its "alive" pipe, and forkserver hands each child a copy: closed
    here, the server exits with the process that started it, and this child (parent-death signal) with the server.
    Each child of this one is handed /dev/null in the pipe's place (and closes it), and dies with this one by
    `die_with`."""
    server = forkserver._forkserver
    os.close(server._forkserver_alive_fd)
    server._forkserver_alive_fd = os.open(os.devnull, os.O_RDONLY)
    server.ensure_running = resource_tracker.ensure_running  # The server's own check would start a new server.


def _run_module(module: str, argv: list[str], cwd: str, env: dict[str, str], paths: tuple[str, str],
                starter: int) -> None:
    """The child: the caller's environment and working directory, stdout and stderr appended to their files (one
    file, the log, for a sweep's point), then the module as __main__ (its `sys.exit` status is the process's exit
    status). It dies with the server (its parent) and with `starter`, the process that started it."""
    _serve_children_from_this_server()
    die_with_parent()
    die_with(starter)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    opened = {path: os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for path in set(paths)}
    null = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((null, 0), (opened[paths[0]], 1), (opened[paths[1]], 2)):
        os.dup2(source, target)
    for fd in (null, *opened.values()):
        os.close(fd)
    # `python -m` puts the working directory first on the path (a module next to it imports); the server's path
    # is its parent's.
    sys.path.insert(0, os.getcwd())
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def start(module: str, argv: Sequence[str], *, cwd: str, env: dict[str, str], log: IO, preloaded: bool,
          err: IO | None = None):
    """Starts `python -m module argv` with stdout appended to `log` and stderr to `err` (to `log` when not given):
    forked from the preloaded server when asked and possible, else a fresh interpreter. Returns a Popen-like
    handle."""
    if preloaded and preloading_possible(env):
        for stream in {log, err or log}:
            stream.flush()
        return PreloadedProcess(module, argv, cwd=cwd, env=env, log=log, err=err)
    return subprocess.Popen([sys.executable, "-m", module, *argv], cwd=cwd, env=env, stdout=log,
                            stderr=err or subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
