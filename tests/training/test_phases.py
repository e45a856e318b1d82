"""Regimes through the trainer: two phases with fresh optimizer state, resume in phase 2, warm-up with linear
scaling, LARS, and the run-time exploration/decay rule on a synthetic loss curve."""

import json

import keras
import numpy as np
import pytest
from helpers import tiny_config

from tfregimes.optim.exploration import ExplorationSchedule
from tfregimes.training import train_and_evaluate
from tfregimes.training.exploration_controller import ExplorationController

TWO_PHASES = dict(epochs=4, transition_epoch=2, learning_rate=0.1, momentum=0.0, lr_schedule="constant",
                  lr_boundaries=(), phase2_optimizer="sgd", phase2_learning_rate=0.01, phase2_momentum=0.9)


@pytest.fixture(scope="module")
def two_phase_run(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("two_phase") / "run", **TWO_PHASES)
    return config, train_and_evaluate(config)


def test_two_phases_share_one_history_with_each_phase_learning_rate(two_phase_run):
    _, result = two_phase_run
    history = result.run_dir.read_history()
    assert [row["phase"] for row in history] == [1, 1, 2, 2]
    assert [row["learning_rate"] for row in history] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    progress = result.run_dir.read_progress()
    assert progress["phase"] == {"index": 1, "optimizer": "sgd"}


def test_phase_switch_starts_a_fresh_optimizer():
    from tfregimes.training.phases import phases_from_config
    from tfregimes.training.trainer import build_network_and_wrapper, compile_for_phase
    config = tiny_config("unused", **TWO_PHASES)
    phases = phases_from_config(config)
    model = build_network_and_wrapper(config, (8, 8, 3), 10)
    first = compile_for_phase(model, phases[0], config, steps_per_epoch=4)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(np.float32)
    model.fit(x, np.arange(16) % 10, batch_size=8, epochs=1, verbose=0)
    assert int(first.iterations.numpy()) == 2
    second = compile_for_phase(model, phases[1], config, steps_per_epoch=4)
    assert second is not first and model.optimizer is second
    assert int(second.iterations.numpy()) == 0
    momenta = [v for v in second.variables if "momentum" in v.path]
    assert momenta and all(not np.any(v.numpy()) for v in momenta)
    assert second.momentum == 0.9 and first.momentum == 0.0


def test_resume_inside_phase_two_reaches_the_uninterrupted_metrics(two_phase_run, tmp_path):
    config, uninterrupted = two_phase_run
    run = tmp_path / "run"
    train_and_evaluate(config.replace(model_dir=str(run)))
    # What a kill after epoch 3 leaves: progress pointing at epoch 3's checkpoint, no metrics.
    progress = json.loads((run / "progress.json").read_text())
    progress.update(epochs_done=3, checkpoint="epoch-0003.weights.h5")
    (run / "progress.json").write_text(json.dumps(progress))
    (run / "metrics.json").unlink()
    resumed = train_and_evaluate(config.replace(model_dir=str(run)))
    assert resumed.metrics["resumed_from_epoch"] == 3
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert resumed.metrics[key] == uninterrupted.metrics[key], key


def test_warmup_and_linear_scaling_reach_the_scaled_rate(tmp_path):
    # Batch 32 against a reference of 16: peak 2 x 0.05, reached after one epoch of warm-up from 0.05.
    result = train_and_evaluate(tiny_config(tmp_path / "run", epochs=3, lr_schedule="constant", lr_boundaries=(),
                                            reference_batch_size=16, warmup_epochs=1.0))
    rates = [row["learning_rate"] for row in result.run_dir.read_history()]
    steps = 512 // 32
    assert rates[0] == pytest.approx(0.05 + 0.05 * (steps - 1) / steps)  # The last warm-up step.
    assert rates[1:] == pytest.approx([0.1, 0.1])


def test_lars_trains_with_its_own_weight_decay(tmp_path):
    result = train_and_evaluate(tiny_config(tmp_path / "run", optimizer="lars", learning_rate=5.0,
                                            lr_schedule="constant", lr_boundaries=()))
    history = result.run_dir.read_history()
    assert not result.metrics["diverged"] and history[-1]["loss"] < history[0]["loss"]


class _FakeOptimizer:
    def __init__(self):
        self._iterations = keras.Variable(0, dtype="int64")  # What schedules read (schedule_step).


class _FakeModel:
    def __init__(self):
        self.optimizer = _FakeOptimizer()


def test_exploration_rule_on_a_synthetic_loss_curve():
    schedule = ExplorationSchedule(1.0, 0.01, "step", decay=0.1, decay_interval_steps=100)
    controller = ExplorationController(schedule, window=2, tolerance=0.05, extra_epochs=3)
    controller.set_model(_FakeModel())
    losses = [2.0, 1.0, 0.6, 0.5, 0.49, 0.485, 0.48, 0.479, 0.478]
    for epoch, loss in enumerate(losses):
        controller.model.optimizer._iterations.assign((epoch + 1) * 100)
        controller.on_epoch_end(epoch, {"loss": loss})
    # Epoch 5: (0.5 - 0.49 ... ) window 2 → (0.6 - 0.49)/0.6 = 0.18 ≥ 0.05; epoch 6: (0.5 - 0.485)/0.5 = 0.03 < 0.05.
    assert controller.flat_epoch == 6 and controller.decay_epoch == 9
    assert int(schedule.decay_start.numpy()) == 900
    assert controller.history_fields(6)["lr_event"].startswith("flat: loss improved 0.03")
    assert controller.history_fields(9)["lr_event"] == "decay: step decay starts at step 900"
    assert controller.history_fields(7)["lr_event"] == ""
    assert [float(schedule(s)) for s in (899, 900, 999, 1000, 1100, 1200)] == \
        pytest.approx([1.0, 0.1, 0.1, 0.01, 0.01, 0.01])  # First decay at the decision; floored at min_lr.
    restored = ExplorationController(ExplorationSchedule(1.0, 0.01, "step", decay_interval_steps=100),
                                     window=2, tolerance=0.05, extra_epochs=3)
    restored.restore(json.loads(json.dumps(controller.state())))
    assert restored.state() == controller.state()


@pytest.mark.parametrize("mode,expected", [
    ("linear", [1.0, 1.0, 0.505, 0.01, 0.01]),
    ("cosine", [1.0, 1.0, 0.505, 0.01, 0.01]),
])
def test_smooth_exploration_decay(mode, expected):
    schedule = ExplorationSchedule(1.0, 0.01, mode, transition_steps=200)
    assert float(schedule(500)) == 1.0  # Undecided: the peak, whatever the step.
    schedule.start_decay(100)
    assert [float(schedule(s)) for s in (50, 100, 200, 300, 400)] == pytest.approx(expected)
    # Quarter of the way: linear 1 - 0.99/4, cosine 0.01 + 0.495 (1 + cos(pi/4)).
    quarter = {"linear": 1 - 0.99 / 4, "cosine": 0.01 + 0.495 * (1 + np.cos(np.pi / 4))}[mode]
    assert float(schedule(150)) == pytest.approx(quarter)


def test_explore_schedule_runs_end_to_end_and_records_its_decisions(tmp_path):
    result = train_and_evaluate(tiny_config(
        tmp_path / "run", epochs=6, lr_schedule="explore", lr_boundaries=(), min_lr=0.001, flat_window=1,
        flat_tolerance=10.0, extra_exploration_epochs=1, exploration_decay="step", decay_interval_epochs=1.0))
    history = result.run_dir.read_history()
    events = [row["lr_event"] for row in history]
    assert events[1].startswith("flat:") and events[2].startswith("decay:")
    rates = [row["learning_rate"] for row in history]
    assert rates[:3] == pytest.approx([0.05] * 3)
    assert rates[3:] == pytest.approx([0.005, 0.001, 0.001])  # x0.1 per epoch, floored at min_lr.
    assert result.metrics["exploration"]["flat_epoch"] == 2 and result.metrics["exploration"]["decay_epoch"] == 3


def test_a_rising_loss_is_not_a_plateau():
    """Seed 000 decays after the loss flattens; a rise (e.g. after warm-up) must not count as flat."""
    schedule = ExplorationSchedule(1.0, 0.01, "step", decay=0.1, decay_interval_steps=100)
    controller = ExplorationController(schedule, window=2, tolerance=0.05, extra_epochs=1)
    controller.set_model(_FakeModel())
    rising_then_falling = [1.0, 1.2, 1.5, 1.3, 1.0, 0.7, 0.69, 0.68]
    for epoch, loss in enumerate(rising_then_falling):
        controller.model.optimizer._iterations.assign((epoch + 1) * 100)
        controller.on_epoch_end(epoch, {"loss": loss})
    # Window 2: epochs 3 and 4 rose ((1.0 - 1.5)/1.0 = -0.5, (1.2 - 1.3)/1.2 = -0.083), epochs 5-7 fell by 0.33,
    # 0.46 and 0.31; epoch 8 fell by (0.7 - 0.68)/0.7 = 0.029 < 0.05: the first plateau.
    assert controller.flat_epoch == 8 and controller.decay_epoch is None
    assert controller.history_fields(3)["lr_event"] == ""
