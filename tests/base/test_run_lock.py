"""A run directory is claimed atomically: unique default names, and a lock that a second live process respects
while a dead process's lock is taken over (issue 12, item 2)."""

import os
import subprocess
import sys

import pytest
from helpers import REPO, tiny_config

from tfregimes.base.run_dir import RunDirectory, RunDirectoryBusyError

HOLD_LOCK = """
import sys, time
from tfregimes.base.run_dir import RunDirectory
lock = RunDirectory(sys.argv[1]).lock()
print("locked", flush=True)
time.sleep(120)
"""


def test_default_names_claimed_in_the_same_second_differ(tmp_path):
    claimed = [RunDirectory.claim_default("npz:/a/b.npz", "mlp", base=tmp_path) for _ in range(3)]
    roots = [run.root for run in claimed]
    assert len(set(roots)) == 3 and all(root.is_dir() for root in roots)
    assert roots[0].name.startswith("npz__a_b.npz_mlp_")
    assert roots[1].name == roots[0].name + "-2" and roots[2].name == roots[0].name + "-3"


def test_a_second_live_process_is_refused_with_a_clear_error(tmp_path):
    from tfregimes.training import train_and_evaluate
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryBusyError,
                           match=rf"{run} is being written by process {holder.pid} on this machine"):
            train_and_evaluate(tiny_config(run))
        assert not (run / "flags.cfg").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed: its lock is stale, and the next run takes it over.
    lock = RunDirectory(run).lock()
    assert lock.took_over_from == holder.pid
    lock.release()


def test_the_same_process_cannot_claim_a_directory_twice_and_release_frees_it(tmp_path):
    first = RunDirectory(tmp_path / "run").lock()
    with pytest.raises(RunDirectoryBusyError, match=f"process {os.getpid()}"):
        RunDirectory(tmp_path / "run").lock()
    first.release()
    second = RunDirectory(tmp_path / "run").lock()
    assert second.took_over_from is None  # A released lock is no one's.
    second.release()
