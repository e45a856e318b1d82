"""What several tests share: the repository root, a tiny run's config, running a CLI as a user would, a localhost
cluster of worker processes, and closed forms for a linear softmax classifier (logits x·W + b), the hand
computations that tests compare with."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def tiny_config(model_dir: Path, **changes):
    """A run of seconds: an MLP on the generated `synthetic` dataset, checkpointed after every epoch (the tests
    that kill or copy a run between epochs expect each epoch's files)."""
    from tfregimes.config.run_config import RunConfig
    base = dict(dataset="synthetic", model="mlp", hidden_sizes=(32,), epochs=3, batch_size=32,
                learning_rate=0.05, lr_boundaries=(2.0,), model_dir=str(model_dir), verbose=0,
                checkpoint_every_secs=0.0)
    base.update(changes)
    return RunConfig(**base)


def localhost_workers(argv_of_worker, count: int = 2) -> list[subprocess.Popen]:
    """Starts `count` processes, `argv_of_worker(index)` each, as the workers of one localhost cluster (TF_CONFIG)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    cluster = {"worker": [f"localhost:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [subprocess.Popen(
        argv_of_worker(index), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
             "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})})
        for index in range(count)]


def cli_env(**variables: str) -> dict[str, str]:
    """This process's environment with TensorFlow's C++ info lines off, plus `variables`."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **variables}


class ModuleProcess:
    """`python -m MODULE ARGS` in its own process, with the part of `subprocess.Popen`'s interface tests use
    (`communicate`, `returncode`, `poll`, `kill`): stdout and stderr apart, the given working directory and
    environment, its exit status. Preloaded (the default), it is forked from this test worker's server that imported
    TensorFlow once (tfregimes.sweep.launch, as a sweep's points are), saving the ~5 s of CPU a fresh interpreter
    spends importing it. A test of what a fresh interpreter does (its imports, its start-up output) passes
    preloaded=False."""

    def __init__(self, module: str, args, *, cwd: Path = REPO, env: dict[str, str] | None = None,
                 preloaded: bool = True):
        from tfregimes.sweep import launch
        self.args = ["python", "-m", module, *args]
        self.returncode: int | None = None
        self._outputs: tuple[str, str] | None = None
        self._files = tempfile.TemporaryDirectory(prefix="module_process_")
        self._out, self._err = (open(Path(self._files.name) / name, "w+") for name in ("stdout", "stderr"))
        self._process = launch.start(module, list(args), cwd=str(cwd), env=cli_env() if env is None else env,
                                     log=self._out, err=self._err, preloaded=preloaded)

    def poll(self) -> int | None:
        try:
            self.returncode = self._process.wait(0)
        except subprocess.TimeoutExpired:
            pass
        return self.returncode

    def kill(self) -> None:
        self._process.kill()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Waits for the exit (killed, then TimeoutExpired raised, after `timeout` seconds, as subprocess.run does)
        and returns (stdout, stderr)."""
        if self._outputs is None:
            try:
                self.returncode = self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                raise
            finally:
                texts = []
                for stream in (self._out, self._err):
                    stream.seek(0)
                    texts.append(stream.read())
                    stream.close()
                self._files.cleanup()
                self._outputs = (texts[0], texts[1])
        return self._outputs


def run_cli(module: str, *args: str, cwd: Path = REPO, timeout: int = 300, env: dict[str, str] | None = None,
            preloaded: bool = True) -> subprocess.CompletedProcess:
    """Runs `python -m MODULE ARGS...` as a user would (with the variables in `env` added to the environment),
    capturing its output; preloaded unless asked otherwise (ModuleProcess)."""
    process = ModuleProcess(module, args, cwd=cwd, env=cli_env(**(env or {})), preloaded=preloaded)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_script(code: str, folder: Path, timeout: int = 300, **options) -> subprocess.CompletedProcess:
    """Runs `code` in a process of its own (TensorFlow's runtime not started: logical devices can still be set up),
    as `python -m` of a module written to `folder`, its working directory; preloaded unless asked otherwise."""
    (folder / "script_under_test.py").write_text(code)
    return run_cli("script_under_test", cwd=folder, timeout=timeout, **options)


def sweep_env() -> dict[str, str]:
    """The environment a test's `python -m tfregimes.sweep` runs in: this checkout first on the path."""
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def points_of(sweep_dir: Path) -> dict:
    """sweep.json's points by name ({} before the sweep wrote it)."""
    path = sweep_dir / "sweep.json"
    return {p["name"]: p for p in json.loads(path.read_text())["points"]} if path.exists() else {}


def read_events(directory: Path) -> list:
    """Every TensorBoard event in `directory`'s event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    return [event for path in sorted(directory.glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(path)).Load()]


def plugin_values(events, tag):
    return [value for event in events for value in event.summary.value if value.tag == tag]


def ce_loss(w, b, x, y):
    """Mean softmax cross-entropy."""
    logits = x @ w + b
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def ce_gradients(w, b, x, y):
    """(∂/∂W, ∂/∂b) of the mean softmax cross-entropy."""
    logits = x @ w + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return x.T @ p / len(y), p.mean(axis=0)


def assert_reported_losses(metrics: dict, data, run_dir, splits) -> None:
    """Each split's loss (and accuracy, where reported) in a run's metrics.json equals the cross-entropy (the
    fraction of argmax hits) of its exported model on that split's examples, computed here independently."""
    import keras
    import pytest

    network = keras.saving.load_model(str(Path(run_dir) / "export" / "model.keras"))
    for split in splits:
        x, y = data.arrays(split)
        logits = np.asarray(network(x, training=False))
        expected = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits))
        assert metrics[f"{split}_loss"] == pytest.approx(expected, rel=1e-4), split
        if f"{split}_accuracy" in metrics:
            assert metrics[f"{split}_accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == y))), split
