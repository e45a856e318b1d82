"""Seed 004's confusion set (Jia & Su §7.1, Scenario I): extra training images with random labels.

"We randomly select a subset of 10000 images as the training set and train the DNN with a confusion set consisting
of CIFAR-10 samples with random labels ... We calculate all metrics based on the sampled 10000 training images."
Our copy does not say where the confusion images come from; here they are drawn from the training images outside
the training subset (so no image is trained on under two labels), and each gets a label drawn uniformly from all
classes (its true class included, with chance 1/K). Both draws depend only on the seed, as the subset does, so
"a new training set and a new confusion set every time" is a new seed.
"""

from __future__ import annotations

import numpy as np

# The confusion set's random stream, apart from the one `subset_indices` draws the training subset with.
CONFUSION_STREAM = 4


def confusion_set(num_available: int, used_rows: np.ndarray, size: int, num_classes: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): `size` training rows outside `used_rows` (sorted) and a random label for each, chosen by
    `seed`."""
    rest = np.setdiff1d(np.arange(num_available), used_rows)
    if not 1 <= size <= len(rest):
        raise ValueError(f"confusion_size={size} must be between 1 and the {len(rest)} training examples outside the "
                         f"training subset of {len(used_rows)} (of {num_available}); lower --confusion_size or "
                         "--train_subset")
    rng = np.random.default_rng([seed, CONFUSION_STREAM])
    rows = np.sort(rng.choice(rest, size=size, replace=False))
    labels = rng.integers(0, num_classes, size=size).astype(np.int32)
    return rows, labels
