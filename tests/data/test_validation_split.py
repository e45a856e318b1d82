"""--validation_split: a share of the training examples held out of training, fixed by the seed, disjoint from what
is trained on, and measured into metrics.json (seed 000's LARS is tuned on it instead of the test split)."""

import numpy as np
import pytest
from helpers import assert_reported_losses, tiny_config

from tfregimes.cli.train_flag_rules import InvalidFlagsError, parse_run_config
from tfregimes.data import load_dataset
from tfregimes.data.pipeline import validation_rows
from tfregimes.training import train_and_evaluate


def _keys(x: np.ndarray) -> set[bytes]:
    """Each example's bytes (synthetic examples are distinct), to compare splits as sets."""
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_validation_rows_are_a_seeded_share():
    rows = validation_rows(200, 0.25, seed=3)
    assert len(rows) == 50 and len(set(rows)) == 50 and list(rows) == sorted(rows) and rows.max() < 200
    np.testing.assert_array_equal(rows, validation_rows(200, 0.25, seed=3))
    assert not np.array_equal(rows, validation_rows(200, 0.25, seed=4))
    # Its own stream: not the rows --train_subset's draw (default_rng(seed)) would pick first.
    assert not np.array_equal(rows, np.sort(np.random.default_rng(3).choice(200, 50, replace=False)))
    for share in (0.0, 1.0, 0.001):  # None held out, none left, or round(0.2) = 0.
        with pytest.raises(ValueError, match="validation_split"):
            validation_rows(200, share, seed=0)


def test_held_out_examples_are_disjoint_from_training_and_fixed_by_seed():
    whole = load_dataset("synthetic", train_subset=160, seed=2)
    split = load_dataset("synthetic", train_subset=160, seed=2, validation_split=0.25)
    assert (split.info.num_train, split.info.num_validation, split.steps_per_epoch(32)) == (120, 40, 3)
    x_train, y_train = split.arrays("train")
    x_val, y_val = split.arrays("validation")
    assert not _keys(x_train) & _keys(x_val)  # Disjoint ...
    assert _keys(x_train) | _keys(x_val) == _keys(whole.arrays("train")[0])  # ... and together the subset.
    expected = validation_rows(160, 0.25, seed=2)  # The rows of the subset the rule names, labels with them.
    np.testing.assert_array_equal(x_val, whole.arrays("train")[0][expected])
    np.testing.assert_array_equal(y_val, whole.arrays("train")[1][expected])
    # Training batches never show a held-out example; the evaluation pipeline reads all of them once.
    trained = np.concatenate([x.numpy() for x, _ in split.train(32, seed=0, num_epochs=2)])
    assert not _keys(trained) & _keys(x_val)
    assert sum(x.shape[0] for x, _ in split.evaluation("validation", 16)) == 40
    other = load_dataset("synthetic", train_subset=160, seed=5, validation_split=0.25)
    assert _keys(other.arrays("validation")[0]) != _keys(x_val)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        whole.evaluation("validation", 16)  # No held-out split unless asked for.
    with pytest.raises(InvalidFlagsError, match="validation_split"):
        parse_run_config(["--dataset=synthetic", "--validation_split=-0.1"])


def test_a_run_reports_validation_metrics_on_the_held_out_examples(tmp_path):
    config = tiny_config(tmp_path / "run", epochs=1, lr_schedule="constant", lr_boundaries=(), train_subset=128,
                         validation_split=0.25, seed=1)
    metrics = train_and_evaluate(config).metrics
    assert (metrics["num_train"], metrics["num_validation"]) == (96, 32)
    data = load_dataset("synthetic", train_subset=128, seed=1, validation_split=0.25)
    assert_reported_losses(metrics, data, tmp_path / "run", ("train", "validation"))
