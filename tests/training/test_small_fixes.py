"""Issue 12, item 11: quiet CPU starts, result file modes, epochs counted from 1, timings and TensorBoard across a
resume, files the README's examples write kept out of git."""

import json
import os
import shutil
import stat
import subprocess

import pytest
from helpers import REPO

from tfregimes.training import train_and_evaluate


def test_result_files_get_the_mode_new_files_get(tmp_path):
    from tfregimes.base.run_dir import write_atomically
    umask = os.umask(0)
    os.umask(umask)
    write_atomically(tmp_path / "metrics.json", "{}")
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o666 & ~umask


def test_tensorflow_start_up_noise_is_filtered_but_a_gpu_failure_kept():
    from tfregimes.base.quiet_start import is_noise
    cuinit = "E0000 00:00:1796165943.283472    8601 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    assert is_noise(cuinit, has_nvidia_device=False) and not is_noise(cuinit, has_nvidia_device=True)
    assert not is_noise("E0000 something else went wrong", has_nvidia_device=False)
    # A CLI's whole stderr being its one error line is checked in test_user_errors (a damaged .keras file).


def test_readme_example_outputs_are_ignored_by_git():
    for name in ("eval.json", "interpolation.csv", "a_to_b.png"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, check=False).returncode == 0, name


@pytest.fixture(scope="module")
def resumed_after_epoch_2(tiny_run, tmp_path_factory):
    """The tiny run as a kill after epoch 3's files but before progress.json recorded it would leave it, resumed."""
    config, result = tiny_run
    root = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(result.run_dir.root, root, ignore=shutil.ignore_patterns(".lock", "export", "metrics.json"))
    progress = json.loads((root / "progress.json").read_text())
    earlier = progress["earlier"][0]
    (root / "progress.json").write_text(json.dumps(earlier))
    return earlier, train_and_evaluate(config.replace(model_dir=str(root)))


def test_timings_cover_every_process_of_a_resumed_run(resumed_after_epoch_2):
    earlier, resumed = resumed_after_epoch_2
    history = resumed.run_dir.read_history()
    assert len(history) == 3 and resumed.metrics["resumed_from_epoch"] == 2
    assert resumed.metrics["train_seconds"] == pytest.approx(sum(row["train_seconds"] for row in history))
    assert resumed.metrics["wall_seconds"] == pytest.approx(
        earlier["wall_seconds"] + resumed.metrics["wall_seconds_this_process"], abs=0.05)


def test_tensorboard_shows_each_epoch_once_after_a_resume(resumed_after_epoch_2):
    # The accumulator the TensorBoard server uses (the legacy one never purges TF2 summaries, which are tensors).
    from tensorboard.backend.event_processing.plugin_event_accumulator import (
        EventAccumulator,
    )
    _, resumed = resumed_after_epoch_2
    for split in ("train", "validation"):
        accumulator = EventAccumulator(str(resumed.run_dir.tensorboard_dir / split), tensor_size_guidance={"": 0})
        accumulator.Reload()
        steps = [event.step for event in accumulator.Tensors("epoch_loss")]
        assert steps == [0, 1, 2], split
