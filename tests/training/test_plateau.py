"""--lr_schedule=plateau (seed 004 §7.1: the rate divided by 10 whenever the training loss plateaus): the rule on a
hand-made loss sequence, the schedule's rates, the flags, and a run that records its decisions."""

import json

import pytest
from helpers import tiny_config

from tfregimes.cli.train_flag_rules import InvalidFlagsError, parse_run_config
from tfregimes.optim import build_schedule
from tfregimes.optim.plateau import PlateauSchedule
from tfregimes.training import train_and_evaluate
from tfregimes.training.plateau_controller import PlateauController


def _rates(losses, *, patience, threshold, factor=0.1, min_lr=0.0):
    """The learning rate each epoch trains at, given each epoch's training loss (the rate of epoch e + 1 is decided
    at the end of epoch e)."""
    schedule = PlateauSchedule(1.0, factor, min_lr)
    controller = PlateauController(schedule, patience=patience, threshold=threshold)
    rates = []
    for epoch, loss in enumerate(losses):
        rates.append(float(schedule(epoch * 10)))
        controller.on_epoch_end(epoch, {"loss": loss})
    return rates, controller


def test_rate_divided_after_patience_epochs_without_relative_improvement():
    # best: 1.0 (e1), 0.5 (e2); e3 0.4999 is within 1e-2 of 0.5 (needs < 0.495): no improvement; e4 0.6 none ->
    # patience 2 reached after epoch 4: rate / 10 from epoch 5. e5 0.45 < 0.495 improves; e6, e7 flat -> / 10 after
    # epoch 7; e8 0.1 improves; e9 0.1, e10 0.0999 (not < 0.099) -> / 10 after epoch 10.
    losses = [1.0, 0.5, 0.4999, 0.6, 0.45, 0.45, 0.46, 0.1, 0.1, 0.0999, 0.01]
    rates, controller = _rates(losses, patience=2, threshold=1e-2)
    assert rates == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001])
    assert controller.reduced_after == [4, 7, 10]
    assert controller.best == 0.01 and controller.wait == 0
    assert controller.history_fields(4)["lr_event"].startswith("plateau: no relative improvement of 0.01 over best")
    assert controller.history_fields(5)["lr_event"] == ""


def test_patience_one_and_zero_threshold_and_the_floor():
    # Threshold 0: any decrease improves; an equal loss does not.
    rates, controller = _rates([3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0], patience=1, threshold=0.0, factor=0.5,
                               min_lr=0.2)
    assert rates == pytest.approx([1, 1, 1, 0.5, 0.5, 0.25, 0.2])  # 0.125 floored at min_lr.
    assert controller.reduced_after == [3, 5, 6, 7]
    assert "already at --min_lr" in controller.history_fields(7)["lr_event"]
    assert "already at --min_lr" not in controller.history_fields(6)["lr_event"]
    rates, _ = _rates([3.0, 2.0, 1.0, 0.5], patience=1, threshold=0.0)
    assert rates == [1.0] * 4  # Improves every epoch: never divided.


def test_state_round_trips_through_json():
    _, controller = _rates([1.0, 1.0, 1.0, 0.5, 0.5], patience=2, threshold=1e-4)
    restored = PlateauController(PlateauSchedule(1.0, 0.1), patience=2, threshold=1e-4)
    restored.restore(json.loads(json.dumps(controller.state())))
    assert restored.state() == controller.state() == {"best": 0.5, "wait": 1, "reductions": 1, "reduced_after": [3]}
    assert float(restored.schedule(0)) == pytest.approx(0.1)
    assert json.loads(json.dumps(PlateauController(PlateauSchedule(1.0, 0.1), patience=1, threshold=0).state())) \
        == {"best": None, "wait": 0, "reductions": 0, "reduced_after": []}


def test_build_schedule_takes_the_factor_and_rejects_what_plateau_ignores():
    schedule = build_schedule("plateau", base_lr=0.1, steps_per_epoch=10, total_epochs=5, plateau_factor=0.5,
                              min_lr=0.01)
    assert isinstance(schedule, PlateauSchedule) and schedule.factor == 0.5
    with pytest.raises(ValueError, match="does not use boundaries"):
        build_schedule("plateau", base_lr=0.1, steps_per_epoch=10, total_epochs=5, boundaries=(2,))
    with pytest.raises(ValueError, match="does not use plateau_factor"):
        build_schedule("step", base_lr=0.1, steps_per_epoch=10, total_epochs=5, boundaries=(2,), plateau_factor=0.5)
    with pytest.raises(ValueError, match="factor must be in"):
        PlateauSchedule(0.1, 1.0)


@pytest.mark.parametrize("argv,message", [
    (["--lr_schedule=plateau", "--plateau_patience=0"], "plateau_patience"),
    (["--lr_schedule=plateau", "--plateau_factor=1.5"], "plateau_factor"),
    (["--lr_schedule=plateau", "--plateau_threshold=-0.1"], "plateau_threshold"),
    (["--lr_schedule=step", "--plateau_patience=3"], "--plateau_patience only applies with --lr_schedule=plateau"),
    (["--lr_schedule=cosine", "--plateau_factor=0.5"], "--plateau_factor only applies with --lr_schedule=plateau"),
    (["--transition_epoch=5", "--phase2_lr_schedule=plateau"], "phase2_lr_schedule"),
])
def test_bad_plateau_flags_fail_naming_the_flag(argv, message):
    with pytest.raises(InvalidFlagsError, match=message):
        parse_run_config(argv)


def test_plateau_flags_parse():
    config = parse_run_config(["--lr_schedule=plateau", "--plateau_patience=3", "--plateau_factor=0.5",
                               "--plateau_threshold=0.01", "--min_lr=1e-4"])
    assert (config.plateau_patience, config.plateau_factor, config.plateau_threshold) == (3, 0.5, 0.01)


def test_plateau_run_records_each_division(tmp_path):
    # Threshold 0.99: after the first epoch no epoch improves enough, so with patience 1 the rate is divided after
    # every epoch from the second on.
    result = train_and_evaluate(tiny_config(tmp_path / "run", epochs=4, lr_schedule="plateau", lr_boundaries=(),
                                            plateau_patience=1, plateau_threshold=0.99, plateau_factor=0.1))
    history = result.run_dir.read_history()
    assert [row["learning_rate"] for row in history] == pytest.approx([0.05, 0.05, 0.005, 0.0005])
    assert [bool(row["lr_event"]) for row in history] == [False, True, True, True]
    assert result.metrics["plateau"]["reduced_after"] == [2, 3, 4]
    assert result.metrics["plateau"]["reductions"] == 3
