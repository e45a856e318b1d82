"""Checks of a dataset's arrays when it is loaded, so that bad data stops a run before it trains with one line
naming the array, instead of training a wrong model (a stray label 99 silently making 100 classes) or being
reported as a divergence (a NaN pixel)."""

from __future__ import annotations

import numpy as np

from tfregimes.data.errors import InvalidDatasetError

_CHUNK_ROWS = 8192  # Finite checks in chunks: a float copy of the whole of a large split is never made.


def check_nonempty(name: str, key: str, x: np.ndarray) -> None:
    if len(x) == 0:
        raise InvalidDatasetError(f"{name}: {key} is empty; every split needs at least one example")


def check_inputs(name: str, key: str, x: np.ndarray) -> None:
    """x is non-empty and, for floats, finite."""
    check_nonempty(name, key, x)
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad_rows, count = [], 0
    for start in range(0, len(x), _CHUNK_ROWS):
        finite = np.isfinite(x[start:start + _CHUNK_ROWS]).reshape(min(_CHUNK_ROWS, len(x) - start), -1)
        count += int(finite.size - finite.sum())
        if not bad_rows:
            bad_rows = list(np.flatnonzero(~finite.all(axis=1)) + start)
    if count:
        raise InvalidDatasetError(f"{name}: {key} holds {count} non-finite values (NaN or inf); the first in row "
                                  f"{bad_rows[0]}. Clean or drop those examples.")


def check_labels(name: str, key: str, y: np.ndarray, num_classes: int | None) -> np.ndarray:
    """Integer class ids of shape (N,) in [0, num_classes) (None: only ≥ 0); returns them flattened from
    (N, 1)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InvalidDatasetError(f"{name}: {key} must be integer class ids of shape (N,); got {y.dtype} "
                                  f"{y.shape}")
    outside = np.flatnonzero((y < 0) | (y >= (num_classes if num_classes is not None else np.inf)))
    if len(outside):
        row = int(outside[0])
        allowed = ("class ids start at 0" if num_classes is None
                   else f"outside [0, {num_classes}) for num_classes={num_classes}")
        raise InvalidDatasetError(f"{name}: {key} holds label {int(y[row])} (row {row}), {allowed}; "
                                  f"{len(outside)} label(s) like it")
    return y


def check_lengths(name: str, split: str, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise InvalidDatasetError(f"{name}: x_{split} has {len(x)} rows but y_{split} has {len(y)}")


def check_shapes(name: str, x_train: np.ndarray, x_test: np.ndarray) -> None:
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InvalidDatasetError(f"{name}: x_train and x_test differ in shape: {x_train.shape[1:]} vs "
                                  f"{x_test.shape[1:]}")
    if x_train.ndim not in (2, 4):
        raise InvalidDatasetError(f"{name}: images must be NHWC or flat (N, D); got x_train of shape "
                                  f"{x_train.shape}")


def inferred_num_classes(name: str, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """The class count of labels that do not state it: max + 1 over the training labels, refusing class ids
    without a training example (a stray label 99 among 0..9) and test labels no training example has."""
    for key, labels in (("y_train", y_train), ("y_test", y_test)):
        check_labels(name, key, labels, None)
    counts = np.bincount(y_train)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        span = (f"{missing[0]}..{missing[-1]}" if len(missing) == missing[-1] - missing[0] + 1
                else ", ".join(str(c) for c in missing[:10]))
        raise InvalidDatasetError(
            f"{name}: y_train: class ids {span} have no training example (labels run 0..{len(counts) - 1}); a "
            "stray label? If those classes are meant to be empty, store num_classes in the file.")
    unseen = np.flatnonzero(y_test >= len(counts))
    if len(unseen):
        row = int(unseen[0])
        raise InvalidDatasetError(f"{name}: y_test: class id {int(y_test[row])} (row {row}) has no training "
                                  f"example (training labels run 0..{len(counts) - 1})")
    return len(counts)


def check_split_arrays(name: str, x_train, y_train, x_test, y_test, num_classes: int) -> None:
    """Every check above, on a dataset's four arrays."""
    check_lengths(name, "train", x_train, y_train)
    check_lengths(name, "test", x_test, y_test)
    check_shapes(name, x_train, x_test)
    for key, x in (("x_train", x_train), ("x_test", x_test)):
        check_inputs(name, key, x)
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        check_labels(name, key, y, num_classes)
