"""Training-time diagnostics through the trainer and its flags."""

import pytest
from absl import flags

from conftest import tiny_config
from tfregimes import train_flags
from tfregimes.training import train_and_evaluate


def test_every_diagnostic_lands_in_the_history_of_a_run(tmp_path):
    result = train_and_evaluate(tiny_config(
        tmp_path / "run", epochs=2, lr_boundaries=(1.0,), momentum=0.9,
        diagnostics=("angular", "elr", "momentum", "margins"), margin_samples=64))
    history = result.run_dir.read_history()
    for column in ("angular_update", "weight_norm", "effective_lr", "effective_lr_per_epoch", "tuning_factor",
                   "momentum_scale", "margin_q1", "margin_median", "margin_q3", "margin_mean"):
        assert all(row[column] is not None for row in history), column
    # Seed 002 eq. 9 through the run's own numbers: η / ‖x‖².
    last = history[-1]
    assert last["effective_lr"] == pytest.approx(last["learning_rate"] / last["weight_norm"] ** 2, rel=1e-5)
    assert 0 < last["angular_update"] < 3.15
    assert (result.run_dir.root / "diagnostics" / "momentum_alignment.json").exists()


def test_unknown_diagnostic_and_margin_flags_without_margins_fail():
    with pytest.raises(flags.IllegalFlagValueError, match="--diagnostics=\\['sharpness'\\]: must be"):
        flags.FLAGS(["prog", "--diagnostics=sharpness"])
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", "--diagnostics=angular", "--margin_samples=10"])
    try:
        with pytest.raises(flags.ValidationError, match="--margin_samples only applies with --diagnostics=margins"):
            train_flags.check_flag_combinations(train_flags.config_from_flags())
    finally:
        flags.FLAGS.unparse_flags()
