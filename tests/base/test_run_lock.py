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


CLAIM_AT = """
import sys, time
from tfregimes.base.run_dir import RunDirectory
RunDirectory.new_default = classmethod(lambda cls, dataset, model, base="runs": cls(f"{base}/same_name"))
start = float(sys.argv[2])
while time.time() < start:  # Every process claims from the same instant on.
    pass
for _ in range(int(sys.argv[3])):
    print(RunDirectory.claim_default("d", "m", base=sys.argv[1]).root.name)
"""


def test_default_names_claimed_at_the_same_instant_by_many_threads_are_all_distinct(tmp_path, monkeypatch):
    """Issue 24, item 3: the claim is one exclusive mkdir, never 'exists?' then 'create'."""
    import threading
    monkeypatch.setattr(RunDirectory, "new_default",
                        classmethod(lambda cls, dataset, model, base="runs": cls(f"{base}/same_name")))
    def claim(base, barrier, names):
        barrier.wait()
        names.append(RunDirectory.claim_default("d", "m", base=base).root.name)

    for attempt in range(10):
        barrier, names = threading.Barrier(8), []
        threads = [threading.Thread(target=claim, args=(tmp_path / str(attempt), barrier, names)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(names) == sorted(["same_name", *(f"same_name-{n}" for n in range(2, 9))])


def test_default_names_claimed_at_the_same_instant_by_many_processes_are_all_distinct(tmp_path):
    import time
    start, processes, claims = time.time() + 1.5, 6, 60
    children = [subprocess.Popen([sys.executable, "-c", CLAIM_AT, str(tmp_path), str(start), str(claims)], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
                for _ in range(processes)]
    names = [name for child in children for name in child.communicate(timeout=60)[0].split()]
    assert all(child.returncode == 0 for child in children)
    assert len(names) == len(set(names)) == processes * claims
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
