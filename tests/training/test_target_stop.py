"""--stop_at_train_loss / --stop_at_train_accuracy: a run ends at the first checked epoch whose clean training loss
(accuracy) reaches the target, read by one inference-mode pass over the clean training examples; it says where in
metrics.json, history.csv, progress.json and its summary, stays stopped when resumed, and refuses bad flags early."""

import json

import numpy as np
import pytest
from absl import flags
from helpers import tiny_config

from tfregimes.base.run_dir import RunDirectory
from tfregimes.cli import train_flag_rules  # noqa: F401  (defines the flags and their cross-flag rules)
from tfregimes.cli.summary import run_summary
from tfregimes.training import RunConfigError, train_and_evaluate
from tfregimes.training.phases import phases_from_config
from tfregimes.training.target_stop import TrainingTarget, check_rows
from tfregimes.training.trainer import build_network_and_wrapper, compile_for_phase, load_run_data

FLAGS = flags.FLAGS


# --- The rule, on values fed by hand ---------------------------------------------------------------------------
class _Model:
    stop_training = False


def _checks(criterion, target, values, every=1, last_epoch=100):
    """Feeds `values` ((loss, accuracy) the check reads at each epoch); returns the callback, the epochs it
    checked and the epoch fit would stop after (None: ran them all)."""
    epochs = iter(range(len(values)))
    checked = []

    def measure():
        checked.append(epoch + 1)
        loss, accuracy = values[epoch]
        return {"loss": loss, "accuracy": accuracy, "examples": 10}

    callback = TrainingTarget(criterion, target, measure, every=every, last_epoch=last_epoch)
    callback.set_model(_Model())
    for epoch in epochs:
        logs = {"loss": 5.0}
        callback.on_epoch_end(epoch, logs)
        if epoch + 1 in checked:
            assert logs["stop_clean_loss"] == values[epoch][0] and logs["stop_clean_accuracy"] == values[epoch][1]
        else:
            assert "stop_clean_loss" not in logs
        if callback.model.stop_training:
            return callback, checked, epoch + 1
    return callback, checked, None


def test_a_loss_target_is_met_at_or_below_it_and_an_accuracy_target_at_or_above_it():
    callback, checked, stopped = _checks("train_loss", 0.5, [(0.9, 0.1), (0.5000001, 0.2), (0.5, 0.3), (0.1, 1)])
    assert stopped == 3 and checked == [1, 2, 3]  # The loss equal to the target meets it.
    assert callback.metrics() == {"criterion": "train_loss", "target": 0.5, "reached_target": True,
                                  "stopped_at_epoch": 3, "clean_loss": 0.5, "clean_accuracy": 0.3,
                                  "checked_at_epoch": 3, "check_examples": 10, "check_every": 1}
    _, _, stopped = _checks("train_accuracy", 0.9, [(0.1, 0.5), (0.1, 0.89999), (0.2, 0.9), (0.0, 0.95)])
    assert stopped == 3


def test_checks_run_every_k_epochs_and_at_the_last_and_a_missed_target_says_what_it_read():
    values = [(1.0 - 0.1 * e, 0.0) for e in range(7)]  # 1.0, 0.9, ..., 0.4
    callback, checked, stopped = _checks("train_loss", 0.75, values, every=3, last_epoch=7)
    assert checked == [3, 6] and stopped == 6  # Epoch 4's 0.7 meets the target, but epoch 4 is not checked.
    callback, checked, stopped = _checks("train_loss", 0.35, values, every=3, last_epoch=7)
    assert checked == [3, 6, 7] and stopped is None
    assert callback.metrics()["reached_target"] is False and callback.metrics()["stopped_at_epoch"] is None
    assert callback.metrics()["clean_loss"] == pytest.approx(0.4) and callback.metrics()["checked_at_epoch"] == 7
    restored = TrainingTarget("train_loss", 0.35, lambda: pytest.fail("a stopped run measures nothing"), every=3,
                              last_epoch=7)
    restored.restore({"reached_at_epoch": 6, "last_check": {"epoch": 6, "loss": 0.4, "accuracy": 1.0,
                                                             "examples": 10}})
    restored.set_model(_Model())
    restored.on_epoch_end(6, {})
    assert restored.model.stop_training and restored.metrics()["stopped_at_epoch"] == 6


def test_the_checked_subset_is_a_fixed_draw_of_the_seed():
    assert check_rows(1437, 0, seed=0) is None and check_rows(1437, 1437, seed=0) is None
    assert check_rows(1437, 5000, seed=0) is None
    rows = check_rows(1437, 300, seed=0)
    assert len(rows) == len(set(rows)) == 300 and list(rows) == sorted(rows) and rows.max() < 1437
    assert np.array_equal(rows, check_rows(1437, 300, seed=0))
    assert not np.array_equal(rows, check_rows(1437, 300, seed=1))


# --- Runs on digits, against losses computed by hand from the checkpoints -----------------------------------------
def _digits(tmp_path, name, **changes):
    settings = dict(dataset="digits", model="mlp", hidden_sizes=(32,), epochs=12, batch_size=64,
                    optimizer="adam", learning_rate=3e-3, lr_schedule="constant", lr_boundaries=())
    settings.update(changes)
    return tiny_config(tmp_path / name, **settings)


def _history(run_dir, column):
    lines = (run_dir / "history.csv").read_text().splitlines()
    index = lines[0].split(",").index(column)
    return [float(cells[index]) if cells[index] else None for cells in (line.split(",") for line in lines[1:])]


def _clean_by_hand(config, run_dir, epoch, rows=None):
    """(loss, accuracy) of the weights after `epoch` (its checkpoint) on the clean training examples (`rows` of
    them), in inference mode with the run's normalization: softmax cross-entropy written out in float64."""
    data = load_run_data(config)
    model = build_network_and_wrapper(config, data.info.input_shape, data.info.num_classes)
    compile_for_phase(model, phases_from_config(config)[0], config, data.steps_per_epoch(config.batch_size))
    model.load_weights(str(RunDirectory(run_dir).checkpoint_path(epoch)))
    images, labels = data.arrays("train")  # Normalized as the run's pipelines normalize.
    if rows is not None:
        images, labels = images[rows], labels[rows]
    logits = np.asarray(model.network(images, training=False), np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_softmax[np.arange(len(labels)), labels].mean())
    return loss, float((logits.argmax(axis=1) == labels).mean())


LOSS_TARGET = 0.2


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    config = _digits(tmp_path_factory.mktemp("target"), "stopped", stop_at_train_loss=LOSS_TARGET)
    return config, train_and_evaluate(config)


def test_a_run_stops_where_the_clean_loss_computed_by_hand_first_falls_to_the_target(stopped_run):
    config, result = stopped_run
    metrics, root = result.metrics, result.run_dir.root
    stop = metrics["stop"]
    stopped = stop["stopped_at_epoch"]
    assert stop["reached_target"] is True and 1 < stopped < config.epochs and metrics["epochs_run"] == stopped
    # The checkpoints of the epoch it stopped at and the one before (the trainer keeps both).
    at_stop, _ = _clean_by_hand(config, root, stopped)
    before, _ = _clean_by_hand(config, root, stopped - 1)
    assert at_stop <= LOSS_TARGET < before
    assert stop["clean_loss"] == pytest.approx(at_stop, rel=1e-5, abs=1e-7)
    # Every epoch checked (--stop_check_every=1), each above the target until the last.
    checked = _history(root, "stop_clean_loss")
    assert len(checked) == stopped and all(loss > LOSS_TARGET for loss in checked[:-1])
    assert checked[-2] == pytest.approx(before, rel=1e-5) and checked[-1] == pytest.approx(at_stop, rel=1e-5)
    # The check reads exactly metrics.json's train_loss: the final weights are those of the stopping epoch.
    assert stop["clean_loss"] == metrics["train_loss"] and stop["clean_accuracy"] == metrics["train_accuracy"]
    assert (stop["criterion"], stop["target"], stop["check_examples"], stop["check_every"]) == \
        ("train_loss", LOSS_TARGET, 1437, 1)
    on_disk = json.loads((root / "metrics.json").read_text())["stop"]
    assert on_disk == stop
    progress = json.loads((root / "progress.json").read_text())
    assert progress["epochs_done"] == stopped and progress["stop"]["reached_at_epoch"] == stopped
    assert (f"reached train loss <= 0.2 at epoch {stopped} (clean loss {at_stop:.4f}): stopped there"
            in run_summary(metrics))


def test_a_resumed_run_that_reached_its_target_stays_stopped(stopped_run):
    config, result = stopped_run
    root = result.run_dir.root
    stopped = result.metrics["stop"]["stopped_at_epoch"]
    (root / "metrics.json").unlink()  # Killed after the epoch's progress.json, before metrics.json.
    resumed = train_and_evaluate(config)
    assert resumed.metrics["resumed_from_epoch"] == stopped and resumed.metrics["epochs_run"] == stopped
    assert resumed.metrics["stop"] == result.metrics["stop"]
    assert len(_history(root, "stop_clean_loss")) == stopped
    assert resumed.metrics["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-6)


def test_an_accuracy_target_checked_every_third_epoch_stops_at_the_first_checked_epoch_reaching_it(tmp_path):
    config = _digits(tmp_path, "accuracy", stop_at_train_accuracy=0.95, stop_check_every=3)
    result = train_and_evaluate(config)
    stop, root = result.metrics["stop"], result.run_dir.root
    accuracies = _history(root, "stop_clean_accuracy")
    assert [epoch for epoch, value in enumerate(accuracies, 1) if value is not None] == \
        list(range(3, stop["stopped_at_epoch"] + 1, 3))
    checked = [value for value in accuracies if value is not None]
    assert checked[-1] >= 0.95 and all(value < 0.95 for value in checked[:-1])
    by_hand = _clean_by_hand(config, root, stop["stopped_at_epoch"])[1]
    assert stop["clean_accuracy"] == checked[-1] == pytest.approx(by_hand, abs=1e-9)
    assert stop["criterion"] == "train_accuracy" and stop["check_every"] == 3
    assert f"reached train accuracy >= 95.00 % at epoch {stop['stopped_at_epoch']}" in run_summary(result.metrics)


def test_an_unreachable_target_runs_every_epoch_checks_the_last_on_its_subset_and_says_so(tmp_path):
    config = _digits(tmp_path, "never", epochs=2, stop_at_train_loss=1e-6, stop_check_every=5,
                     stop_check_examples=300, seed=3)
    result = train_and_evaluate(config)
    metrics, stop, root = result.metrics, result.metrics["stop"], result.run_dir.root
    assert metrics["epochs_run"] == 2 and stop["reached_target"] is False and stop["stopped_at_epoch"] is None
    assert _history(root, "stop_clean_loss")[0] is None and stop["checked_at_epoch"] == 2  # Only the last epoch.
    assert stop["check_examples"] == 300
    by_hand, _ = _clean_by_hand(config, root, 2, rows=check_rows(1437, 300, seed=3))
    assert stop["clean_loss"] == pytest.approx(by_hand, rel=1e-5) and stop["clean_loss"] != metrics["train_loss"]
    assert f"did not reach train loss <= 1e-06 in 2 epochs (clean loss {stop['clean_loss']:.4f})" in \
        run_summary(metrics)


def test_a_target_reached_in_phase_one_skips_phase_two(tmp_path):
    config = _digits(tmp_path, "phases", epochs=8, transition_epoch=4, phase2_optimizer="sgd",
                     phase2_learning_rate=0.01, stop_at_train_accuracy=0.5)
    result = train_and_evaluate(config)
    checked = _history(result.run_dir.root, "stop_clean_accuracy")
    assert result.metrics["stop"]["stopped_at_epoch"] == len(checked) < 4, checked
    assert json.loads((result.run_dir.root / "progress.json").read_text())["phase"]["index"] == 0


def test_a_run_without_a_stop_records_none(tmp_path):
    result = train_and_evaluate(tiny_config(tmp_path / "plain", epochs=1, lr_schedule="constant", lr_boundaries=()))
    assert result.metrics["stop"] is None and "  stop  " not in run_summary(result.metrics)
    assert "stop_clean_loss" not in (result.run_dir.root / "history.csv").read_text()


# --- Flags ------------------------------------------------------------------------------------------------------
@pytest.fixture
def parse():
    yield lambda *args: FLAGS(["tfregimes.train", *args])
    FLAGS.unparse_flags()


@pytest.mark.parametrize("flag,value", [("stop_at_train_accuracy", "1.5"), ("stop_at_train_accuracy", "-0.1"),
                                        ("stop_at_train_accuracy", "nan"), ("stop_at_train_loss", "-1"),
                                        ("stop_at_train_loss", "nan"), ("stop_at_train_loss", "inf"),
                                        ("stop_check_every", "0"), ("stop_check_examples", "-1")])
def test_bad_values_fail_at_parse_time_naming_the_flag(parse, flag, value):
    with pytest.raises(flags.IllegalFlagValueError, match=f"--{flag}={value}"):
        parse(f"--{flag}={value}")


def test_both_stops_at_once_fail_at_parse_time_naming_both(parse):
    with pytest.raises(flags.IllegalFlagValueError,
                       match="--stop_at_train_loss and --stop_at_train_accuracy are both set"):
        parse("--stop_at_train_loss=0.1", "--stop_at_train_accuracy=0.9")


@pytest.mark.parametrize("argv", [["--stop_check_every=2"], ["--stop_check_examples=500"],
                                  ["--stop_check_every=2", "--stop_check_examples=0"]])
def test_check_flags_without_a_stop_are_an_error_and_with_one_are_taken(argv):
    with pytest.raises(train_flag_rules.InvalidFlagsError,
                       match="only applies with --stop_at_train_loss or --stop_at_train_accuracy"):
        train_flag_rules.parse_run_config(argv)
    config = train_flag_rules.parse_run_config([*argv, "--stop_at_train_loss=0.05"])
    assert config.stop_at_train_loss == 0.05


def test_the_library_refuses_bad_stops_before_creating_the_run(tmp_path):
    with pytest.raises(RunConfigError, match="--stop_at_train_accuracy=1.5: must be a fraction in"):
        train_and_evaluate(_digits(tmp_path, "bad", stop_at_train_accuracy=1.5))
    with pytest.raises(RunConfigError, match="--stop_at_train_loss=0.1 and --stop_at_train_accuracy=0.9: a run "
                                             "stops at one target"):
        train_and_evaluate(_digits(tmp_path, "bad", stop_at_train_loss=0.1, stop_at_train_accuracy=0.9))
    with pytest.raises(RunConfigError, match="--stop_check_every=0"):
        train_and_evaluate(_digits(tmp_path, "bad", stop_at_train_loss=0.1, stop_check_every=0))
    assert not (tmp_path / "bad").exists()
