"""Input scaling and mean/std normalization by name.

Inputs are first scaled to [0, 1] (uint8 / 255; floats as given), then normalized with statistics
of the FULL training split (before --train_subset), so that a separate `evaluate` process
recomputes exactly the same test inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfregimes.base.registry import Registry

# A position whose training values vary by less than one 8-bit intensity level (e.g. MNIST's
# always-black border) would be blown up by 1/std on test data; its std is floored at that level.
MIN_STD = 1.0 / 255.0
_STATS_CHUNK_ROWS = 8192


@dataclasses.dataclass(frozen=True)
class Normalization:
    name: str
    description: str
    # Axes of the (N, ...) training array averaged over, given its rank; None: no normalization.
    reduce_axes: Callable[[int], tuple[int, ...]] | None


NORMALIZATIONS: Registry[Normalization] = Registry("normalization")
NORMALIZATIONS.register("none", Normalization("none", "inputs only scaled to [0, 1]", None))
# Seed 000, appendix A.2 (CIFAR-10/100, SVHN): every pixel position and channel has its own
# mean and std over the training set.
NORMALIZATIONS.register("per_pixel", Normalization(
    "per_pixel", "mean/std per pixel position and channel", lambda rank: (0,)))
# Seed 000, appendix A.2 (ImageNet): one mean/std per colour channel. Flat data counts as one channel.
NORMALIZATIONS.register("per_channel", Normalization(
    "per_channel", "mean/std per channel",
    lambda rank: tuple(range(rank - 1)) if rank == 4 else tuple(range(rank))))

# `--normalization` accepts these: "auto" picks the dataset's default.
NORMALIZATION_CHOICES = ("auto", *NORMALIZATIONS.names())


@dataclasses.dataclass(frozen=True)
class NormalizationStats:
    """float32 mean and std that broadcast against one example (or a batch of them)."""

    mean: np.ndarray
    std: np.ndarray


def resolve_normalization(name: str, default: str) -> str:
    """`auto` -> the dataset's default; any other name must be registered."""
    resolved = default if name == "auto" else name
    NORMALIZATIONS.get(resolved)  # fails listing the valid names
    return resolved


def unit_scale_numpy(x: np.ndarray) -> np.ndarray:
    """float32 inputs in [0, 1]: uint8 / 255, floats as given."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


def unit_scale_tf(x: tf.Tensor) -> tf.Tensor:
    """The same as `unit_scale_numpy`, inside a tf.data pipeline (bitwise equal results)."""
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def compute_stats(name: str, x_train: np.ndarray, stats_rows: int | None = None
                  ) -> NormalizationStats | None:
    """Statistics of normalization `name` over the first `stats_rows` rows of `x_train`.

    Sums run in float64 over fixed chunks, so the result is deterministic and the full array
    is never converted to float at once (SVHN with its extra split is 600k images).
    """
    normalization = NORMALIZATIONS.get(name)
    if normalization.reduce_axes is None:
        return None
    x = x_train if stats_rows is None else x_train[:stats_rows]
    if len(x) == 0:
        raise ValueError("cannot compute normalization statistics of an empty training set")
    axes = normalization.reduce_axes(x.ndim)
    total = total_sq = 0.0
    count = 0
    for start in range(0, len(x), _STATS_CHUNK_ROWS):
        chunk = unit_scale_numpy(x[start:start + _STATS_CHUNK_ROWS]).astype(np.float64)
        total = total + chunk.sum(axis=axes)
        total_sq = total_sq + np.square(chunk).sum(axis=axes)
        count += chunk.size // np.size(chunk.sum(axis=axes))
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return NormalizationStats(mean=np.asarray(mean, np.float32),
                              std=np.asarray(np.maximum(std, MIN_STD), np.float32))


def fixed_stats(mean, std) -> NormalizationStats:
    """Published constants, e.g. the ImageNet channel means and stds."""
    return NormalizationStats(mean=np.asarray(mean, np.float32), std=np.asarray(std, np.float32))


def normalize_numpy(x_unit: np.ndarray, stats: NormalizationStats | None) -> np.ndarray:
    if stats is None:
        return x_unit
    return (x_unit - stats.mean) / stats.std


def normalize_tf(x_unit: tf.Tensor, stats: NormalizationStats | None) -> tf.Tensor:
    if stats is None:
        return x_unit
    return (x_unit - tf.constant(stats.mean)) / tf.constant(stats.std)
