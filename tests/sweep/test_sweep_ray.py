"""`--executor=ray` against a real two-node Ray cluster on 127.0.0.1 that the test starts (a head and a second
node process, one CPU each); the second node is killed while the sweep runs, and the sweep still completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray  # noqa: F401  (the test extra installs Ray: the executor is tested on a real cluster, never skipped)
from helpers import REPO, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0"}


def start_node(*args: str, temp_dir: str, log: Path) -> subprocess.Popen:
    # --block keeps `ray start` in the foreground as the leader of its own process group, so killing that group
    # takes the node down (raylet, workers) without touching any other Ray on this machine.
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *args, "--num-cpus=1",
                                 "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}", "--disable-usage-stats",
                                 "--block"], env=ray_env(), start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_started(node: subprocess.Popen, log: Path, deadline: float) -> None:
    while "Ray runtime started" not in log.read_text():
        assert time.monotonic() < deadline and node.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture
def two_node_cluster(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="rs")  # Short: Ray's socket paths live under it.
    head = start_node("--head", f"--port={port}", "--include-dashboard=false", temp_dir=temp_dir,
                      log=tmp_path / "head.log")
    second = None
    try:
        deadline = time.monotonic() + 240
        wait_started(head, tmp_path / "head.log", deadline)
        second = start_node(f"--address={address}", temp_dir=temp_dir, log=tmp_path / "second.log")
        wait_started(second, tmp_path / "second.log", deadline)
        yield address, second
    finally:
        for node in (second, head):
            if node is not None:
                kill_group(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow(45)
def test_a_sweep_on_a_two_node_ray_cluster_survives_losing_a_node(tmp_path, two_node_cluster):
    address, second_node = two_node_cluster
    sweep_dir = tmp_path / "sweep"
    # 40 epochs (a few seconds each point on a quiet machine): long enough to lose a node while both run.
    command = [sys.executable, "-m", "tfregimes.sweep", "--flagfile=flags/smoke.cfg", "--verbose=0", "--epochs=40",
               "--seeds=0,1", "--executor=ray", f"--ray_address={address}", "--cpus_per_run=1",
               f"--sweep_dir={sweep_dir}"]
    sweep = subprocess.Popen(command, cwd=REPO, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    # One point per node (one CPU each): once both have started on their nodes (each point's log has its start
    # line; "running" in sweep.json only says Ray was given the point), the second node holds one of them.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and sweep.poll() is None:
        if (sweep_dir / "sweep.json").exists():
            points = json.loads((sweep_dir / "sweep.json").read_text())["points"]
            if all(p["state"] == "running" and p.get("log") and (sweep_dir / p["log"]).exists()
                   and " point " in (sweep_dir / p["log"]).read_text() for p in points):
                break
        time.sleep(0.2)
    assert sweep.poll() is None, "the sweep ended before both points ran at once: nothing to lose a node under"
    kill_group(second_node)
    output, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, output
    points = json.loads((sweep_dir / "sweep.json").read_text())["points"]
    assert [p["state"] for p in points] == ["done", "done"], output
    for point in points:
        metrics = json.loads((sweep_dir / point["run_dir"] / "metrics.json").read_text())
        assert metrics["epochs_run"] == 40 and metrics["test_accuracy"] is not None
    # The point of the lost node ran again (a second `run_point` on the surviving node).
    starts = [Path(sweep_dir / p["log"]).read_text().count(" point ") for p in points]
    assert sorted(starts) == [1, 2], (starts, output)


def test_without_ray_the_ray_executor_fails_with_the_install_line(tmp_path):
    # A `ray` module that cannot be imported, first on the path (`python -m` puts the working directory there): what
    # a machine without the extra sees.
    fake = tmp_path / "noray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = run_cli("tfregimes.sweep", f"--flagfile={REPO / 'flags' / 'smoke.cfg'}", "--executor=ray",
                     f"--sweep_dir={tmp_path / 's'}", cwd=fake, env=ray_env())
    assert result.returncode == 2
    assert 'pip install -e ".[ray]"' in result.stderr
    assert not (tmp_path / "s").exists()
