"""Across the workers of a cluster, an evaluation pass (the final metrics, the training-target check) is split:
each worker evaluates every n-th batch, and the sums are added over the workers, so each worker reports the whole
split's loss and accuracy for 1/n of the work (2 localhost workers, evaluation_worker.py)."""

import json
import sys
from pathlib import Path

import pytest
from helpers import localhost_workers


@pytest.mark.slow(60)
def test_two_workers_each_evaluate_half_the_batches_and_report_the_whole_split(tmp_path):
    workers = localhost_workers(lambda index: [sys.executable, str(Path(__file__).with_name("evaluation_worker.py")),
                                               str(tmp_path / f"worker{index}.json")])
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    records = [json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2)]
    for record in records:
        assert record["seen_whole"] == 512 and record["whole"]["examples"] == 512
        assert record["shared"]["examples"] == 512
        assert record["shared"]["loss"] == pytest.approx(record["whole"]["loss"], rel=1e-12)
        assert record["shared"]["accuracy"] == pytest.approx(record["whole"]["accuracy"], rel=1e-12)
    # 8 batches of 64: batches 0, 2, 4, 6 on worker 0, the others on worker 1.
    assert [record["seen_shared"] for record in records] == [256, 256]
    assert records[0]["whole"] == pytest.approx(records[1]["whole"])  # One network, synced from worker 0.
