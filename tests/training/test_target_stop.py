"""--stop_at_train_accuracy: a run ends at the first epoch whose recorded training accuracy reaches the target, says
where in metrics.json, progress.json and its summary, stays stopped when resumed, and refuses bad targets early."""

import json

import pytest
from absl import flags
from helpers import tiny_config

from tfregimes.cli import train_flags  # noqa: F401  (defines the flags)
from tfregimes.cli.summary import run_summary
from tfregimes.training import RunConfigError, train_and_evaluate
from tfregimes.training.target_stop import TrainAccuracyTarget

FLAGS = flags.FLAGS


class _Model:
    stop_training = False


def _epochs(target, accuracies):
    """Feeds `accuracies` as successive epochs' logs; returns the callback and the epoch fit would stop after."""
    callback = TrainAccuracyTarget(target)
    callback.set_model(_Model())
    for epoch, accuracy in enumerate(accuracies):
        callback.on_epoch_end(epoch, {"accuracy": accuracy, "loss": 1.0})
        if callback.model.stop_training:
            return callback, epoch + 1
    return callback, None


def test_stops_after_the_first_epoch_at_or_above_the_target():
    callback, stopped = _epochs(0.9, [0.5, 0.89999, 0.9, 0.95])
    assert stopped == 3 and callback.state() == {"target": 0.9, "reached_at_epoch": 3}
    assert callback.metrics() == {"stop_at_train_accuracy": 0.9, "reached_target": True, "stopped_at_epoch": 3}
    callback, stopped = _epochs(1.0, [0.5, 0.99, 0.999])
    assert stopped is None and callback.metrics()["reached_target"] is False
    restored = TrainAccuracyTarget(0.9)
    restored.restore({"target": 0.9, "reached_at_epoch": 2})
    assert restored.reached and restored.reached_at_epoch == 2


def _digits(tmp_path, name, **changes):
    settings = dict(dataset="digits", model="mlp", hidden_sizes=(32,), epochs=12, batch_size=64,
                    optimizer="adam", learning_rate=3e-3, lr_schedule="constant", lr_boundaries=())
    settings.update(changes)
    return tiny_config(tmp_path / name, **settings)


def _history_accuracies(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("accuracy")
    return [float(line.split(",")[column]) for line in lines[1:]]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    config = _digits(tmp_path_factory.mktemp("target"), "stopped", stop_at_train_accuracy=0.9)
    return config, train_and_evaluate(config)


def test_a_run_stops_at_the_first_recorded_epoch_reaching_the_target(stopped_run):
    config, result = stopped_run
    metrics, root = result.metrics, result.run_dir.root
    accuracies = _history_accuracies(root)
    first = next(epoch for epoch, accuracy in enumerate(accuracies, 1) if accuracy >= 0.9)
    assert 1 < first < config.epochs, accuracies  # Stopped before --epochs, and not trivially at once.
    assert len(accuracies) == first == metrics["epochs_run"] == metrics["stopped_at_epoch"]
    assert all(accuracy < 0.9 for accuracy in accuracies[:-1])
    assert metrics["reached_target"] is True and metrics["stop_at_train_accuracy"] == 0.9
    on_disk = json.loads((root / "metrics.json").read_text())
    assert on_disk["stopped_at_epoch"] == first and on_disk["reached_target"] is True
    progress = json.loads((root / "progress.json").read_text())
    assert progress["epochs_done"] == first and progress["target"]["reached_at_epoch"] == first
    assert f"reached at epoch {first}: stopped there" in run_summary(metrics)


def test_a_resumed_run_that_reached_its_target_stays_stopped(stopped_run):
    config, result = stopped_run
    root = result.run_dir.root
    first = result.metrics["stopped_at_epoch"]
    (root / "metrics.json").unlink()  # Killed after the epoch's progress.json, before metrics.json.
    resumed = train_and_evaluate(config)
    assert resumed.metrics["resumed_from_epoch"] == first
    assert resumed.metrics["epochs_run"] == first and resumed.metrics["stopped_at_epoch"] == first
    assert len(_history_accuracies(root)) == first
    assert resumed.metrics["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-6)


def test_an_unreachable_target_runs_every_epoch_and_says_so(tmp_path):
    result = train_and_evaluate(_digits(tmp_path, "never", epochs=2, stop_at_train_accuracy=1.0))
    metrics = result.metrics
    assert metrics["epochs_run"] == 2 and len(_history_accuracies(result.run_dir.root)) == 2
    assert metrics["reached_target"] is False and metrics["stopped_at_epoch"] is None
    assert "train accuracy >= 100.00 % NOT reached in 2 epochs" in run_summary(metrics)


def test_a_target_reached_in_phase_one_skips_phase_two(tmp_path):
    config = _digits(tmp_path, "phases", epochs=8, transition_epoch=4, phase2_optimizer="sgd",
                     phase2_learning_rate=0.01, stop_at_train_accuracy=0.5)
    result = train_and_evaluate(config)
    accuracies = _history_accuracies(result.run_dir.root)
    assert result.metrics["stopped_at_epoch"] == len(accuracies) < 4, accuracies
    assert json.loads((result.run_dir.root / "progress.json").read_text())["phase"]["index"] == 0


@pytest.fixture
def parse():
    yield lambda *args: FLAGS(["tfregimes.train", *args])
    FLAGS.unparse_flags()


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_bad_targets_fail_at_parse_time_naming_the_flag(parse, value):
    with pytest.raises(flags.IllegalFlagValueError, match=f"--stop_at_train_accuracy={value}"):
        parse(f"--stop_at_train_accuracy={value}")


def test_the_library_refuses_a_bad_target_before_creating_the_run(tmp_path):
    with pytest.raises(RunConfigError, match="--stop_at_train_accuracy=1.5: must be a fraction in"):
        train_and_evaluate(_digits(tmp_path, "bad", stop_at_train_accuracy=1.5))
    assert not (tmp_path / "bad").exists()
