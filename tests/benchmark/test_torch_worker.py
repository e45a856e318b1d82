"""The PyTorch twins of --suite=throughput run in a worker process that never imports TensorFlow (issue 24 item 8:
torch 2.14.1's `torch._dynamo` and TensorFlow 2.21 segfaulted in one process). Without PyTorch the protocol is
tested with a stand-in worker (stand_in_worker.py: numpy trainers served by the worker's own `main`), and its
deaths must become the job's `torch` status, never the suite's."""

import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from tfregimes.benchmark import torch_reference, torch_worker
from tfregimes.benchmark.throughput import KERAS_FIT, _TorchRunner, time_rounds, variant_ratios

STAND_IN = (sys.executable, str(Path(__file__).parent / "stand_in_worker.py"))


@pytest.fixture
def request_(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "arrays.npz", images=rng.normal(size=(256, 8, 8, 1)).astype(np.float32),
             labels=np.arange(256) % 10)
    return {"arrays": str(tmp_path / "arrays.npz"), "model": "cnn_small", "input_shape": [8, 8, 1],
            "num_classes": 10, "parameters": 0, "batch_size": 32, "learning_rate": 0.05, "seed": 0}


class FixedRunner:
    """A Keras side whose epochs take `wall` seconds and `cpu` CPU seconds."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def run(self, epochs: int, lead: int = 0) -> tuple[float, float]:
        return self.wall * epochs, self.cpu * epochs


def worker_runners(worker) -> dict:
    return {KERAS_FIT: FixedRunner(0.1, 0.2), **{name: _TorchRunner(worker, name) for name in torch_worker.RUNNERS}}


@pytest.mark.skipif(torch_reference.torch_available(), reason="PyTorch is installed")
def test_the_worker_started_as_the_suite_starts_it_says_pytorch_is_not_installed(request_, tmp_path):
    worker = torch_worker.TorchWorker(request_, tmp_path / "err")
    assert worker.status == f"skipped: {torch_worker.NOT_INSTALLED}"
    assert worker.process.returncode == 0 and (tmp_path / "err").read_text() == ""


def test_the_worker_s_numbers_come_back_as_the_twins_rounds(request_, tmp_path):
    lines = []
    with torch_worker.TorchWorker(request_, tmp_path / "err", STAND_IN) as worker:
        assert worker.status == "stand-in"
        cpu = time.process_time()
        walls, cpus, status = time_rounds(worker_runners(worker), 256, 2, 3, worker.status, log=lines.append)
        own_cpu = time.process_time() - cpu
    assert status == "stand-in" and list(walls) == [KERAS_FIT, *torch_worker.RUNNERS] and len(lines) == 6
    assert walls[KERAS_FIT] == [pytest.approx(256 * 2 / 0.2)] * 3 and cpus[KERAS_FIT] == [pytest.approx(0.2)] * 3
    ratios = variant_ratios(walls, cpus)
    for name in torch_worker.RUNNERS:
        assert len(walls[name]) == 3 and len(cpus[name]) == 3 and min(walls[name]) > 0
        assert ratios[name]["ratio_to_keras_fit"] == pytest.approx(np.median(walls[name]) / 2560, rel=2e-3)
        assert ratios[name]["cpu_ratio_to_keras_fit"] == pytest.approx(np.median([0.2 / c for c in cpus[name]]),
                                                                         rel=2e-3)
    # The twins' CPU seconds are the worker's (20 SGD passes an epoch), not this process's, which only waited.
    assert own_cpu < sum(sum(cpus[name]) for name in torch_worker.RUNNERS)
    assert worker.process.returncode == 0


def test_a_worker_dying_in_the_rounds_drops_the_twins_and_the_suite_goes_on(request_, tmp_path):
    # Epochs 1–2 are the untimed first epochs, 3–6 round 1 (lead + timed, two runners): epoch 7 is round 2's first.
    lines = []
    worker = torch_worker.TorchWorker(request_, tmp_path / "err", (*STAND_IN, "--fail=segfault", "--at_epoch=7"))
    walls, cpus, status = time_rounds(worker_runners(worker), 256, 1, 3, worker.status, log=lines.append)
    assert status == "failed: PyTorch worker killed by SIGSEGV"
    assert list(walls) == list(cpus) == [KERAS_FIT] and len(walls[KERAS_FIT]) == 3
    assert set(variant_ratios(walls, cpus)) == {KERAS_FIT} and any("its variants leave the job" in li for li in lines)


@pytest.mark.parametrize("fail, status", [
    ("segfault", "failed: PyTorch worker killed by SIGSEGV"),
    ("raise", "failed: PyTorch worker exit status 1: RuntimeError: the stand-in failed on purpose"),
])
def test_a_worker_dying_while_it_builds_is_a_failed_status(request_, tmp_path, fail, status):
    with pytest.raises(torch_worker.WorkerFailed) as failure:
        torch_worker.TorchWorker(request_, tmp_path / "err", (*STAND_IN, f"--fail={fail}", "--at_epoch=0"))
    assert str(failure.value) == status


@pytest.mark.parametrize("at_epoch", [0, 7])
def test_a_hung_worker_times_out_is_killed_and_the_suite_goes_on(request_, tmp_path, at_epoch):
    # At epoch 0 it hangs while building, at epoch 7 in round 2 (as in the SIGSEGV test above).
    lines, started = [], time.perf_counter()
    command = (*STAND_IN, "--fail=hang", f"--at_epoch={at_epoch}")
    try:
        worker = torch_worker.TorchWorker(request_, tmp_path / "err", command, timeout=5)
    except torch_worker.WorkerFailed as failure:
        status, walls = str(failure), None
    else:
        walls, _, status = time_rounds(worker_runners(worker), 256, 1, 3, worker.status, log=lines.append)
    assert status == "failed: PyTorch worker timed out after 5 s" and (walls is None) == (at_epoch == 0)
    assert time.perf_counter() - started < 30  # Not the hour the worker sleeps, nor close()'s 30 s grace.
    if walls is not None:
        assert list(walls) == [KERAS_FIT] and len(walls[KERAS_FIT]) == 3
        assert worker.process.returncode == -9 and any("its variants leave the job" in line for line in lines)


@pytest.mark.slow(60)
def test_the_throughput_suite_times_the_pytorch_twins_in_the_worker():
    if not torch_reference.torch_available():  # Not importorskip: this process has imported TensorFlow.
        pytest.skip("PyTorch is the optional [bench] extra")
    result = run_cli("tfregimes.benchmark", "--suite=throughput", "--model=cnn_small", "--dataset=digits",
                     "--batch_size=32", "--train_subset=128", "--rounds=2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = json.loads(result.stdout.strip().splitlines()[-1])["jobs"]
    # torch.__version__ as the worker reports it: the release and its build (2.14.1+cu130, 2.13.0+cpu).
    assert job["torch"].partition("+")[0] == importlib.metadata.version("torch")
    assert set(job["variants"]) == {"trainer", KERAS_FIT, *torch_worker.RUNNERS}
    for name in torch_worker.RUNNERS:
        assert len(job["variants"][name]["round_images_per_s"]) == 2 and job["variants"][name]["images_per_s"] > 0
