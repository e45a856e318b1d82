"""--confusion_size (seed 004 §7.1, Scenario I): random-labelled images from outside the training subset are trained
on, fixed by the seed, and left out of the train split that the metrics use."""

import numpy as np
import pytest
from helpers import assert_reported_losses, tiny_config

from tfregimes.cli.train_flag_rules import InvalidFlagsError, parse_run_config
from tfregimes.data import load_dataset
from tfregimes.data.confusion import confusion_set
from tfregimes.data.sources import make_synthetic
from tfregimes.training import RunConfigError, train_and_evaluate


def _rows_of(x_part, x_all):
    """Indices of `x_part`'s images in `x_all` (synthetic images are distinct)."""
    flat_all = x_all.reshape(len(x_all), -1)
    return np.array([int(np.flatnonzero((flat_all == row).all(axis=1))[0]) for row in x_part.reshape(len(x_part), -1)])


def test_confusion_set_sizes_rows_outside_the_subset_and_labels_fixed_by_seed():
    used = np.array([0, 3, 5, 7])
    rows, labels = confusion_set(20, used, 10, 4, seed=3)
    assert len(rows) == len(labels) == 10 and len(set(rows)) == 10
    assert not set(rows) & set(used) and rows.max() < 20 and list(rows) == sorted(rows)
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 4
    again = confusion_set(20, used, 10, 4, seed=3)
    np.testing.assert_array_equal(again[0], rows)
    np.testing.assert_array_equal(again[1], labels)
    other = confusion_set(20, used, 10, 4, seed=4)
    assert not (np.array_equal(other[0], rows) and np.array_equal(other[1], labels))
    # Labels uniform over the classes: on 16,000 draws each class within 5 % of a quarter.
    _, many = confusion_set(20_000, np.arange(4_000), 16_000, 4, seed=0)
    assert np.allclose(np.bincount(many, minlength=4) / 16_000, 0.25, atol=0.0125)
    with pytest.raises(ValueError, match="confusion_size=17 must be between 1 and the 16"):
        confusion_set(20, used, 17, 4, seed=0)


def test_loaded_confusion_dataset_trains_on_subset_plus_confusion_and_measures_the_subset():
    plain = load_dataset("synthetic", train_subset=100, seed=2)
    confused = load_dataset("synthetic", train_subset=100, seed=2, confusion_size=60)
    assert (confused.info.num_train, confused.info.num_confusion, confused.info.num_fit) == (100, 60, 160)
    assert confused.steps_per_epoch(32) == 5 and plain.steps_per_epoch(32) == 3
    # The train split is exactly the subset a run without confusion set (and evaluate --train_subset) sees.
    for a, b in zip(plain.arrays("train"), confused.arrays("train")):
        np.testing.assert_array_equal(a, b)
    x_all = make_synthetic((8, 8, 3), num_train=512, num_test=256).x_train
    subset_rows = _rows_of(plain.arrays("train")[0], x_all)  # Synthetic data is not normalized: the raw images.
    x_confusion, y_confusion = confused.arrays("confusion")
    confusion_rows = _rows_of(x_confusion, x_all)
    expected_rows, expected_labels = confusion_set(512, np.sort(subset_rows), 60, 10, seed=2)
    np.testing.assert_array_equal(confusion_rows, expected_rows)
    np.testing.assert_array_equal(y_confusion, expected_labels)
    # One epoch of training batches holds each subset and confusion image once (5 batches of 32 of the 160).
    batches = list(confused.train(32, seed=0, num_epochs=1))
    images = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    x_fit = np.concatenate([confused.arrays("train")[0], confused.arrays("confusion")[0]])
    y_fit = np.concatenate([confused.arrays("train")[1], y_confusion])
    index = _rows_of(images, x_fit)
    assert len(set(index)) == 160
    np.testing.assert_array_equal(labels, y_fit[index])
    assert sum(1 for i in index if i >= 100) == 60
    assert sum(x.shape[0] for x, _ in confused.evaluation("train", 64)) == 100
    assert sum(x.shape[0] for x, _ in confused.evaluation("confusion", 64)) == 60


def test_confusion_needs_a_subset_and_room_for_it():
    with pytest.raises(ValueError, match="needs a training subset"):
        load_dataset("synthetic", confusion_size=10)
    with pytest.raises(InvalidFlagsError, match="--confusion_size needs --train_subset"):
        parse_run_config(["--dataset=synthetic", "--confusion_size=10"])
    with pytest.raises(InvalidFlagsError, match="confusion_size"):
        parse_run_config(["--dataset=synthetic", "--train_subset=100", "--confusion_size=-1"])
    assert parse_run_config(["--train_subset=100", "--confusion_size=10"]).confusion_size == 10


def test_a_run_with_a_confusion_set_reports_train_metrics_on_the_subset(tmp_path):
    config = tiny_config(tmp_path / "run", epochs=1, lr_schedule="constant", lr_boundaries=(), train_subset=128,
                         confusion_size=64, seed=1)
    with pytest.raises(RunConfigError, match="--dataset=synthetic: confusion_size=400 must be between 1 and the 384"):
        train_and_evaluate(config.replace(confusion_size=400, model_dir=str(tmp_path / "too_big")))
    metrics = train_and_evaluate(config).metrics
    assert (metrics["num_train"], metrics["num_confusion"]) == (128, 64)
    data = load_dataset("synthetic", train_subset=128, seed=1, confusion_size=64)
    assert_reported_losses(metrics, data, tmp_path / "run", ("train", "confusion"))
