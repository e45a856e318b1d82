"""One point of a sweep: `python -m tfregimes.train` in a process of its own, then `python -m tfregimes.evaluate` on
its export when the sweep asks for metrics (each a fresh interpreter, or forked from one with TensorFlow already
imported: `tfregimes.sweep.launch`). Both executors run points through `run_point`; it imports neither TensorFlow
nor Ray, so a Ray worker runs it as cheaply as the local pool.

Training resumes from the run directory's last checkpoint and a run whose metrics.json exists is complete, so
running a point again after a kill continues it; a finished training with no evaluation yet only evaluates.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import run_state
from tfregimes.sweep import launch

LOG_TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class PointJob:
    """Everything a worker needs to run one point; paths absolute (on a cluster: on storage every node sees)."""

    name: str
    run_dir: str
    log: str
    train_argv: list[str]  # After `python -m tfregimes.train`.
    evaluate_argv: list[str] | None  # After `python -m tfregimes.evaluate`; None: no evaluation.
    evaluation: str | None  # The evaluate JSON it writes.
    cwd: str  # Relative paths in the flags (data files) resolve here.
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # Added to the worker's environment.
    preloaded: bool = False  # Fork train/evaluate from a process with TensorFlow imported (`launch`), where possible.


def child_threads_env(threads: int) -> dict[str, str]:
    """Environment that caps TensorFlow's intra- and inter-op pools (read by TF at start-up) and OpenMP/oneDNN."""
    if threads <= 0:
        return {}
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads)}


class ChildProcesses:
    """The live subprocesses of this process, so that an interrupted sweep can stop them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()

    def add(self, process):
        with self._lock:
            self._live.add(process)

    def discard(self, process):
        with self._lock:
            self._live.discard(process)

    def terminate_all(self, grace_seconds: float = 10.0) -> None:
        with self._lock:
            live = list(self._live)
        for process in live:
            process.terminate()
        deadline = time.monotonic() + grace_seconds
        for process in live:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


CHILDREN = ChildProcesses()


def _run_logged(module: str, argv: list[str], job: PointJob, log) -> int:
    log.write(f"\n$ python -m {module} {' '.join(argv)}\n")
    log.flush()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **job.env}
    process = launch.start(module, argv, cwd=job.cwd, env=env, log=log, preloaded=job.preloaded)
    CHILDREN.add(process)
    try:
        return process.wait()
    finally:
        CHILDREN.discard(process)


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def run_point(job: PointJob) -> dict[str, Any]:
    """Trains (or resumes) and evaluates one point. Returns {state: done|diverged|failed, error, evaluation,
    wall_seconds}: a non-zero exit is a failed point (with the log's last lines), never an exception."""
    started = time.perf_counter()
    Path(job.run_dir).mkdir(parents=True, exist_ok=True)
    metrics_path = RunDirectory(job.run_dir).metrics_path

    def outcome(state: str, error: str | None = None) -> dict[str, Any]:
        evaluation = job.evaluation if state == "done" and job.evaluation else None
        return {"state": state, "error": error, "evaluation": evaluation,
                "wall_seconds": time.perf_counter() - started}

    with open(job.log, "a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} point {job.name} on {os.uname().nodename}\n")
        if not metrics_path.exists():
            code = _run_logged("tfregimes.train", job.train_argv, job, log)
            if code != 0 or not metrics_path.exists():
                log.flush()
                return outcome("failed", f"tfregimes.train exited with {code}:\n{log_tail(job.log)}")
        state = run_state(job.run_dir)
        if state.state == "corrupt":
            return outcome("failed", f"{state.reason} (delete it to train the point again from its last checkpoint)")
        if state.state == "diverged":
            return outcome("diverged")  # A result: no export to evaluate.
        if job.evaluate_argv is not None and not Path(job.evaluation).exists():
            code = _run_logged("tfregimes.evaluate", job.evaluate_argv, job, log)
            if code != 0 or not Path(job.evaluation).exists():
                log.flush()
                return outcome("failed", f"tfregimes.evaluate exited with {code}:\n{log_tail(job.log)}")
    return outcome("done")
