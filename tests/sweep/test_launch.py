"""A preloaded `python -m MODULE` (tfregimes.sweep.launch, which tests' run_cli uses) behaves as a fresh one: its
own stdout and stderr, exit status, working directory and environment, the thread counts TensorFlow reads from the
environment when its runtime starts, and the same training numbers."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from helpers import run_cli

# Run as `python -m probe` from its own folder: a fresh interpreter finds it there because `python -m` puts the
# working directory first on the path.
PROBE = '''
import collections, glob, os, sys
import tfregimes  # Filters TensorFlow's start-up lines from stderr, as in every tfregimes CLI.
import tensorflow as tf
tf.reduce_sum(tf.matmul(tf.ones((64, 64)), tf.ones((64, 64)))).numpy()  # Starts the runtime and its thread pools.
threads = collections.Counter(open(path).read().strip() for path in glob.glob("/proc/self/task/*/comm"))
print(os.getcwd(), os.environ["PROBE_WORD"], sys.argv[1:], threads["tf_Compute"])
# The intra-op pool's threads are unnamed (they keep the process's name), as are the threads a fresh interpreter
# starts while importing: only the difference between two runs of one kind counts the pool.
print(threads["python"], flush=True)
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
'''
THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "3"}


def test_a_preloaded_module_runs_as_a_fresh_one_with_its_output_status_directory_and_threads(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    env = {"PROBE_WORD": "hello", **THREADS}
    fresh, preloaded, four_intra_op = (
        run_cli("probe", "5", "--flag", cwd=tmp_path, env={**env, **changes}, preloaded=preloaded)
        for preloaded, changes in ((False, {}), (True, {}), (True, {"TF_NUM_INTRAOP_THREADS": "4"})))
    assert preloaded.returncode == fresh.returncode == four_intra_op.returncode == 5
    # Inter-op threads are TensorFlow's "tf_Compute" pool: 3 only if the variable reached the runtime's start.
    first_lines = [run.stdout.splitlines()[0] for run in (fresh, preloaded, four_intra_op)]
    assert first_lines == [f"{tmp_path} hello ['5', '--flag'] 3"] * 3
    assert int(four_intra_op.stdout.splitlines()[1]) - int(preloaded.stdout.splitlines()[1]) == 3  # 4 - 1
    assert preloaded.stderr == fresh.stderr == "to stderr\n"


def test_a_preloaded_module_past_its_timeout_is_killed_and_the_timeout_raised(tmp_path):
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("sleeper", cwd=tmp_path, timeout=1)


def test_exit_statuses_of_preloaded_processes_started_and_awaited_from_many_threads_are_never_lost(tmp_path):
    """A sweep starts and awaits its points from several threads; multiprocessing's start() also reads the status of
    every finished child, and a status read by two threads at once came back as 255 for one of them."""
    import threading

    from tfregimes.sweep import launch
    (tmp_path / "quick.py").write_text(
        "import sys, time\ntime.sleep(int(sys.argv[1]) / 200)\nsys.exit(int(sys.argv[1]))\n")
    codes: dict[int, int] = {}

    def run(thread: int) -> None:  # Each thread starts its next process while the others' are ending.
        for index in range(thread * 8, thread * 8 + 8):
            with open(tmp_path / f"log{index}", "w") as log:
                process = launch.start("quick", [str(index % 7 + 1)], cwd=str(tmp_path), env=dict(os.environ),
                                       log=log, preloaded=True)
                codes[index] = process.wait(60)

    threads = [threading.Thread(target=run, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == {index: index % 7 + 1 for index in range(64)}


@pytest.mark.slow(20)
def test_a_preloaded_training_records_the_numbers_a_fresh_one_does(tmp_path):
    metrics = {}
    for preloaded in (False, True):
        run_dir = tmp_path / str(preloaded)
        completed = run_cli("tfregimes.train", "--flagfile=flags/smoke.cfg", "--epochs=1", "--verbose=0",
                            f"--model_dir={run_dir}", env=THREADS, preloaded=preloaded)
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert "status" in completed.stdout
        metrics[preloaded] = json.loads((run_dir / "metrics.json").read_text())
    compared = ("train_loss", "test_loss", "test_accuracy", "epochs_run")
    assert {key: metrics[True][key] for key in compared} == {key: metrics[False][key] for key in compared}


# A preloaded process starting preloaded processes of its own, as a sweep run by run_cli does: the first exits 6,
# the second sleeps until killed.
OUTER = '''
import os, sys, time
from tfregimes.sweep import launch


def start(argument, log):
    return launch.start("inner", [argument], cwd=os.getcwd(), env=dict(os.environ), log=log, preloaded=True)


if __name__ == "__main__":  # multiprocessing's children import the main module.
    with open("first.log", "w") as log:
        code = start("6", log).wait(60)
    with open("second.log", "w") as log:
        start("60", log)
    print(os.getppid(), code, flush=True)
    time.sleep(60)
'''
INNER = '''
import os, sys, time
print(os.getppid(), os.getpid(), flush=True)
time.sleep(int(sys.argv[1]) / 10 if sys.argv[1] == "6" else 60)
sys.exit(int(sys.argv[1]))
'''


def test_a_preloaded_process_has_its_own_preloaded_processes_forked_by_its_server_and_they_die_with_it(tmp_path):
    """No second server (it would import TensorFlow again): the children's parent is the server that forked the
    process starting them. The server outlives that process, so each child watches it: killed, its children end."""
    import psutil
    from helpers import ModuleProcess
    (tmp_path / "outer.py").write_text(OUTER)
    (tmp_path / "inner.py").write_text(INNER)
    outer = ModuleProcess("outer", [], cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "second.log").exists() or not (tmp_path / "second.log").read_text():
        assert outer.poll() is None and time.monotonic() < deadline, outer.communicate()
        time.sleep(0.05)
    first_parent, _ = map(int, (tmp_path / "first.log").read_text().split())
    second_parent, second = map(int, (tmp_path / "second.log").read_text().split())
    server = psutil.Process(outer._process._process.pid).ppid()
    assert first_parent == second_parent == server
    outer.kill()
    stdout, _ = outer.communicate(timeout=30)
    assert stdout.split() == [str(server), "6"]  # The first child's exit status reached the process that started it.
    _, alive = psutil.wait_procs([psutil.Process(second)], timeout=30)
    assert not alive, "a child outlived the preloaded process that started it"
