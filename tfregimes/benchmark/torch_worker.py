"""The PyTorch twins of `--suite=throughput` in a process of their own: `python -m tfregimes.benchmark.torch_worker`.

Why a process: with torch 2.14.1 and TensorFlow 2.21, importing `torch._dynamo` in a process that has imported
TensorFlow dies with a segmentation fault (either import order; issue 24, item 8). Whatever versions an install
pairs, the suite's process never imports PyTorch and the worker never imports TensorFlow (it refuses to build if
something did), so a crash of either framework's start-up can cost the suite its PyTorch numbers, never its run.

The worker imports numpy, torch and `torch_reference` only; it answers the suite one JSON object a line, on its own
stdin and stdout (what PyTorch prints goes to stderr):

    suite → worker  {"arrays": .npz with images and labels, "model", "input_shape", "num_classes", "parameters"
                     (the Keras network's trainable count), "batch_size", "learning_rate", "seed"}   once, first
    worker → suite  {"torch": "2.x"} with both twins built, or {"skipped": why}, and it exits
    suite → worker  {"runner": "torch_eager" | "torch_compile", "epochs": N, "lead": L}
    worker → suite  {"wall": s, "cpu": s}: L untimed epochs, then N timed ones: their summed epoch times and the
                     worker's process CPU time over them (all its threads)

The end of stdin ends the worker. A worker that dies or answers anything else is a `WorkerFailed`, whose message
is the job's `torch` status: "failed: PyTorch worker <how it exited>: <its last line on stderr>". So is a worker
that has not answered within the suite's timeout (a hung compile, a deadlock): it is killed, and the status is
"failed: PyTorch worker timed out after N s".
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from tfregimes.benchmark import torch_reference

RUNNERS = {"torch_eager": False, "torch_compile": True}  # name: compiled by torch.compile
COMMAND = (sys.executable, "-m", "tfregimes.benchmark.torch_worker")
NOT_INSTALLED = "PyTorch is not installed (pip install -e .[bench])"
# Seconds the suite waits for any one answer (building both twins, or one command's epochs) before it kills the
# worker: far above what the suite's jobs take (the build with torch's import: ~10 s; a round of resnet20: ~1 min).
ANSWER_TIMEOUT = 900.0


class WorkerFailed(RuntimeError):
    """The worker died or broke the protocol; the message is the job's `torch` status."""


def build_twins(request: dict, images: np.ndarray, labels: np.ndarray) -> tuple[str, dict]:
    """("2.x", {runner: TorchTrainer}) for the request, or (a "skipped: …" status, {})."""
    if "tensorflow" in sys.modules:  # The pairing this process exists to avoid; nothing may bring it in.
        raise RuntimeError("TensorFlow is imported in the PyTorch worker: " + ", ".join(
            sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow")[:3]))
    if not torch_reference.torch_available():
        return f"skipped: {NOT_INSTALLED}", {}
    if request["model"] not in torch_reference.TWINS:
        return f"skipped: no PyTorch twin of {request['model']}", {}
    trainers = {}
    for name, compiled in RUNNERS.items():
        twin = torch_reference.build_torch_twin(request["model"], tuple(request["input_shape"]),
                                                request["num_classes"], request["parameters"])
        trainers[name] = torch_reference.TorchTrainer(twin, images, labels, request["batch_size"],
                                                      learning_rate=request["learning_rate"], compiled=compiled,
                                                      seed=request["seed"])
    return torch_reference.torch_version(), trainers


def serve(commands: IO[str], answers: IO[str], build: Callable[[dict, np.ndarray, np.ndarray], tuple[str, dict]]):
    """The worker's side of the protocol: builds the trainers for the first line, then runs epochs on command."""
    request = json.loads(commands.readline())
    with np.load(request["arrays"]) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    status, trainers = build(request, images, labels)
    answers.write(json.dumps({"torch": status} if trainers else {"skipped": status.removeprefix("skipped: ")}) + "\n")
    answers.flush()
    for line in commands:
        command = json.loads(line)
        trainer = trainers[command["runner"]]
        for _ in range(command["lead"]):
            trainer.epoch()
        cpu = time.process_time()
        wall = sum(trainer.epoch()[0] for _ in range(command["epochs"]))
        answers.write(json.dumps({"wall": wall, "cpu": time.process_time() - cpu}) + "\n")
        answers.flush()


def main(build=build_twins) -> None:
    """Serves on private copies of stdin and stdout; fds 0 and 1 become /dev/null and stderr, so that neither
    PyTorch's prints nor its compile workers (which inherit fds 0–2) touch the protocol, and the suite sees the end
    of the worker's stdout when the worker itself dies."""
    commands, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w")  # os.dup: not inherited
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    serve(commands, answers, build)


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class TorchWorker:
    """The suite's side: starts the worker on `request` (its "arrays" written by the caller), keeps its stderr in
    `stderr_path`. `status` is the torch version, or why the twins are skipped; `run` raises WorkerFailed."""

    def __init__(self, request: dict, stderr_path: Path, command: tuple[str, ...] = COMMAND,
                 timeout: float = ANSWER_TIMEOUT):
        self.stderr_path = stderr_path
        self.timeout = timeout  # Seconds for each answer.
        with open(stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                            text=True)
        # The worker's lines, read by a thread so that waiting for one can time out ("" at the end of its stdout).
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()
        answer = self._ask(request)
        if "skipped" in answer:
            self.status = f"skipped: {answer['skipped']}"
            self.close()
        elif isinstance(answer.get("torch"), str):
            self.status = answer["torch"]
        else:
            raise self._failed(f"unexpected answer {answer}")

    def run(self, runner: str, epochs: int, lead: int = 0) -> tuple[float, float]:
        """Wall and CPU seconds of the worker's `epochs` timed epochs of `runner`, after `lead` untimed ones."""
        answer = self._ask({"runner": runner, "epochs": epochs, "lead": lead})
        if not {"wall", "cpu"} <= set(answer):
            raise self._failed(f"unexpected answer {answer}")
        return float(answer["wall"]), float(answer["cpu"])

    def _ask(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failed() from None
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self.process.kill()
            raise self._failed(status=f"failed: PyTorch worker timed out after {self.timeout:g} s") from None
        if not line:  # The worker's end of stdout: it died.
            raise self._failed()
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise self._failed(f"unexpected answer {line.strip()[:200]!r}") from None

    def _read_lines(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _failed(self, reason: str = "", status: str = "") -> WorkerFailed:
        self.close()
        if status:
            return WorkerFailed(status)
        code = self.process.returncode
        exit_text = f"exit status {code}"
        if code is not None and code < 0:
            exit_text = f"killed by {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
        reason = reason or _last_line(self.stderr_path)
        return WorkerFailed(f"failed: PyTorch worker {exit_text}" + (f": {reason}" if reason else ""))

    def close(self) -> None:
        """Ends the worker: the end of its stdin, then a kill if it has not exited 30 s later."""
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:  # A worker that died with our last command unread.
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)  # The end of stdout follows the worker's exit.
        if self.process.stdout and not self.process.stdout.closed and not self._reader.is_alive():
            self.process.stdout.close()

    def __enter__(self) -> TorchWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    main()
