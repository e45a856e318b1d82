"""Kills at awkward moments (issue 12, hardening): right at a phase switch, around a run-time exploration decision,
and while gradient accumulation is part-way through an update. Each run is snapshotted as a kill right after an
epoch's progress.json would leave it; resuming a snapshot must end with the uninterrupted run's numbers."""

import shutil

import pytest
from helpers import tiny_config

from tfregimes.training import recording as callbacks_lib
from tfregimes.training import train_and_evaluate

SCENARIOS = {
    # Epochs [0, 2) with SGD at 0.05, [2, 3) with Adam: the snapshot after epoch 2 resumes into the switch.
    "phase_switch": (dict(epochs=3, transition_epoch=2, phase2_optimizer="adam", phase2_learning_rate=1e-3,
                          lr_schedule="constant", lr_boundaries=()), (2,)),
    # The loss counts as flat at the end of epoch 2 and decays at once: snapshot 1 resumes before the decision,
    # snapshot 2 after it was recorded.
    "exploration_decision": (dict(epochs=3, lr_schedule="explore", lr_boundaries=(), min_lr=0.001, flat_window=1,
                                  flat_tolerance=10.0, extra_exploration_epochs=0, exploration_decay="step",
                                  decay_interval_epochs=1.0), (1, 2)),
    # --lr_schedule=plateau with a threshold no epoch meets after the first: the rate is divided after epochs 2
    # and 3; snapshot 2 resumes right after the first division was recorded.
    "plateau_decision": (dict(epochs=4, lr_schedule="plateau", lr_boundaries=(), plateau_patience=1,
                              plateau_threshold=0.99), (1, 2, 3)),
    # 16 micro-batches of 32 per epoch, 3 per update: updates straddle epoch ends, so a checkpoint holds a
    # part-filled accumulator.
    "mid_accumulation": (dict(epochs=3, batch_size=96, grad_accum_steps=3, lr_schedule="constant",
                              lr_boundaries=()), (1, 2)),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_resuming_at_an_awkward_moment_reaches_the_uninterrupted_numbers(scenario, tmp_path, monkeypatch):
    changes, resume_points = SCENARIOS[scenario]
    config = tiny_config(tmp_path / "run", **changes)
    on_epoch_end = callbacks_lib.EpochRecorder.on_epoch_end

    def snapshotting(recorder, epoch, logs=None):
        on_epoch_end(recorder, epoch, logs)
        recorder.wait()  # The epoch's files are written in the background: the snapshot is of them complete.
        shutil.copytree(recorder.run_dir.root, tmp_path / f"after-{epoch + 1}", ignore=shutil.ignore_patterns(".lock"))
    monkeypatch.setattr(callbacks_lib.EpochRecorder, "on_epoch_end", snapshotting)
    uninterrupted = train_and_evaluate(config)
    monkeypatch.setattr(callbacks_lib.EpochRecorder, "on_epoch_end", on_epoch_end)
    expected_history = uninterrupted.run_dir.read_history()
    for epochs_done in resume_points:
        resumed = train_and_evaluate(config.replace(model_dir=str(tmp_path / f"after-{epochs_done}")))
        assert resumed.metrics["resumed_from_epoch"] == epochs_done
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert resumed.metrics[key] == uninterrupted.metrics[key], (epochs_done, key)
        history = resumed.run_dir.read_history()
        for column in ("loss", "learning_rate", "phase", "lr_event"):
            assert [row.get(column) for row in history] == [row.get(column) for row in expected_history], column
        if scenario == "exploration_decision":
            assert resumed.metrics["exploration"] == uninterrupted.metrics["exploration"]
        if scenario == "plateau_decision":
            assert resumed.metrics["plateau"] == uninterrupted.metrics["plateau"]
    if scenario == "exploration_decision":  # The scenario does what it says.
        assert uninterrupted.metrics["exploration"]["flat_epoch"] == 2
        assert [row["learning_rate"] for row in expected_history] == pytest.approx([0.05, 0.05, 0.005])
    if scenario == "plateau_decision":
        assert [row["learning_rate"] for row in expected_history] == pytest.approx([0.05, 0.05, 0.005, 0.0005])
