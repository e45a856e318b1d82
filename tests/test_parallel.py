"""The suite's parallel run (pyproject's addopts, tests/conftest.py): the slow tests are handed out first, longest
first, by a scheduler that keeps the collection order, and the serial opt-outs still run."""

import subprocess
import sys
import tomllib

import pytest
from conftest import pytest_collection_modifyitems
from helpers import REPO


class Item:
    def __init__(self, name, *marks):
        self.name, self.marks = name, {mark.name: mark for mark in marks}

    def get_closest_marker(self, name):
        return self.marks.get(name)


def test_slow_tests_are_moved_to_the_front_longest_first_the_rest_in_collection_order():
    items = [Item("a"), Item("b", pytest.mark.slow(40).mark), Item("c", pytest.mark.filterwarnings("error").mark),
             Item("d", pytest.mark.slow(260).mark), Item("e"), Item("f", pytest.mark.slow(40).mark)]
    pytest_collection_modifyitems(items)
    assert [item.name for item in items] == ["d", "b", "f", "a", "c", "e"]


def test_addopts_run_every_cpu_with_a_scheduler_that_keeps_the_collection_order():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    addopts = project["tool"]["pytest"]["ini_options"]["addopts"].split()
    # `load` would send the first quarter of the collection (every slow test) to one worker; loadgroup reorders its
    # units by size unless told not to.
    assert {"--numprocesses=logical", "--dist=loadgroup", "--no-loadscope-reorder"} <= set(addopts)
    assert any(r.startswith("pytest-xdist") for r in project["project"]["optional-dependencies"]["test"])


@pytest.mark.parametrize("opt_out", [["-p", "no:xdist"], ["-n", "0"]])
def test_serial_opt_outs_run(opt_out):
    completed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *opt_out,
                                "tests/test_parallel.py", "-k", "slow_tests_are_moved or addopts"], cwd=REPO,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "2 passed" in completed.stdout and "bringing up nodes" not in completed.stdout
