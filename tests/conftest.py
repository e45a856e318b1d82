"""Shared fixtures: one tiny trained run that several tests read. Shared functions live in tests/helpers.py."""

from __future__ import annotations

import os

import pytest
from helpers import tiny_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser, pluginmanager):
    """Without pytest-xdist (`-p no:xdist`, or not installed) pyproject's addopts still parse and the run is serial."""
    if not pluginmanager.has_plugin("xdist"):
        parser.addoption("--numprocesses", dest="numprocesses", help="ignored: pytest-xdist is not active")
        parser.addoption("--dist", dest="dist", help="ignored: pytest-xdist is not active")
        parser.addoption("--no-loadscope-reorder", action="store_false", dest="loadscopereorder",
                         help="ignored: pytest-xdist is not active")


def slow_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    return float(marker.args[0]) if marker else 0.0


def pytest_collection_modifyitems(items):
    """The slowest tests first, longest first (stable otherwise): the parallel run (pyproject's addopts) hands tests
    to its workers in this order, so the long ones overlap each other and the many short ones fill in after them,
    instead of a long test starting near the end and running alone."""
    items.sort(key=lambda item: -slow_seconds(item))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(config, RunResult) of a finished tiny run, trained once per test session."""
    from tfregimes.training import train_and_evaluate
    config = tiny_config(tmp_path_factory.mktemp("tiny_run") / "run")
    return config, train_and_evaluate(config)


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
