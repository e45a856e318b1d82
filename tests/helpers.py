"""What several tests share: the repository root, a tiny run's config, running a CLI as a user would, a localhost
cluster of worker processes, and closed forms for a linear softmax classifier (logits x·W + b), the hand
computations that tests compare with."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def tiny_config(model_dir: Path, **changes):
    """A run of seconds: an MLP on the generated `synthetic` dataset."""
    from tfregimes.config.run_config import RunConfig
    base = dict(dataset="synthetic", model="mlp", hidden_sizes=(32,), epochs=3, batch_size=32,
                learning_rate=0.05, lr_boundaries=(2.0,), model_dir=str(model_dir), verbose=0)
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


def run_cli(module: str, *args: str, cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `python -m MODULE ARGS...` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


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
