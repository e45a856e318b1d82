"""Shared fixtures: one tiny trained run that several tests read, and a helper to run the CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def tiny_config(model_dir: Path, **changes):
    """A run of seconds: an MLP on the generated `synthetic` dataset."""
    from tfregimes.config import RunConfig
    base = dict(dataset="synthetic", model="mlp", hidden_sizes=(32,), epochs=3, batch_size=32,
                learning_rate=0.05, lr_boundaries=(2.0,), model_dir=str(model_dir), verbose=0)
    base.update(changes)
    return RunConfig(**base)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(config, RunResult) of a finished tiny run, trained once per test session."""
    from tfregimes.training import train_and_evaluate
    config = tiny_config(tmp_path_factory.mktemp("tiny_run") / "run")
    return config, train_and_evaluate(config)


def run_cli(module: str, *args: str, cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `python -m MODULE ARGS...` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory):
    """A sweep directory of 4 tiny runs (batch size × seed) and one diverged point (tests/result_fixtures.py)."""
    from result_fixtures import make_sweep
    return make_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="session")
def diagnostics_run(tmp_path_factory):
    """A tiny two-phase run with every training diagnostic and an evaluation.json."""
    from result_fixtures import make_diagnostics_run
    return make_diagnostics_run(tmp_path_factory.mktemp("diagnostics_run") / "run")
