"""1-D linear interpolation between two trained networks (Goodfellow et al. 2015; Keskar et al. 2017 Figure 3,
seed 003): loss and accuracy along θ(a) = a·θ₂ + (1 − a)·θ₁, a ∈ [−1, 2] by default.

θ is every float variable of the network. Batch normalization's moving statistics are, by `bn_statistics`:
  recompute    (default) recomputed at each θ(a) from the training data: the population mean and variance of each
               BN layer's inputs over the batches of the training split given (precise BN; every layer's inputs
               computed with batch statistics, as in training). Keskar et al. evaluate with batch statistics,
               which this amounts to; the interpolated weights are then evaluated in inference mode.
  interpolate  interpolated like the weights. Beyond a ∈ [0, 1] a moving variance can extrapolate below zero; it is
               clipped at 0 (the layer's ε keeps the division finite) and each row counts the clipped entries in
               `bn_variances_clipped`: losses there are artefacts of the clipping.
Integer state (e.g. a dropout seed) is taken from θ₁. Neither model's variables are written: points go through
`stateless_call`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base import progress as progress_lib
from tfregimes.diagnostics.minimum.flat_model import cross_entropy


def interpolation_alphas(points: int = 31, start: float = -1.0, stop: float = 2.0) -> np.ndarray:
    """`points` evenly spaced values of a from `start` to `stop` (31 points: steps of 0.1 over [−1, 2])."""
    if points < 2:
        raise ValueError(f"need at least 2 interpolation points, got {points}")
    return np.linspace(start, stop, points)


def _check_same_structure(first: list, second: list, kind: str) -> None:
    shapes = [(tuple(v.shape), v.dtype) for v in first], [(tuple(v.shape), v.dtype) for v in second]
    if shapes[0] != shapes[1]:
        raise ValueError(f"the two models' {kind} variables differ in number, shape or dtype; interpolation "
                         "needs two networks of the same architecture")


BN_STATISTICS = ("recompute", "interpolate")
_MEAN, _VARIANCE = "moving_mean", "moving_variance"


def _interpolate(first, second, alpha: float, clipped: list | None = None) -> list[tf.Tensor]:
    """θ(a) variable by variable; counts the moving-variance entries clipped at 0 into clipped[0]."""
    values = []
    for variable_1, variable_2 in zip(first, second):
        value_1, value_2 = tf.convert_to_tensor(variable_1), tf.convert_to_tensor(variable_2)
        if not value_1.dtype.is_floating:
            values.append(value_1)
            continue
        value = alpha * value_2 + (1.0 - alpha) * value_1
        if variable_1.path.endswith(_VARIANCE):
            if clipped is not None:
                clipped[0] += int(tf.reduce_sum(tf.cast(value < 0.0, tf.int32)))
            value = tf.maximum(value, 0.0)
        values.append(value)
    return values


def _nested_layers(model: keras.Model):
    """Every layer of `model`, also inside nested models (an export's network behind its input normalization)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _nested_layers(layer)


class _ZeroMomentum:
    """Sets every batch-norm layer's momentum to 0 while inside, so that a training-mode call returns the batch's
    own statistics as the layer's new moving statistics."""

    def __init__(self, model: keras.Model):
        self.layers = [layer for layer in _nested_layers(model)
                       if hasattr(layer, _MEAN) and hasattr(layer, "momentum")]

    def __enter__(self):
        self.saved = [layer.momentum for layer in self.layers]
        for layer in self.layers:
            layer.momentum = 0.0

    def __exit__(self, *exc):
        for layer, momentum in zip(self.layers, self.saved):
            layer.momentum = momentum


def _recomputed(model, batch_statistics, trainable, non_trainable, inputs, batch_size: int) -> list:
    """`non_trainable` with every BN layer's moving mean and variance replaced by the population statistics of
    its inputs over `inputs`: per batch, the batch's mean m_b and biased variance v_b (momentum 0); then
    mean = Σ n_b m_b / N and variance = Σ n_b (v_b + m_b²) / N − mean²."""
    paths = [variable.path for variable in model.non_trainable_variables]
    is_statistic = [path.endswith((_MEAN, _VARIANCE)) for path in paths]
    sums = [0.0] * len(paths)
    square_sums = [0.0] * len(paths)
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        for index, value in enumerate(batch_statistics(trainable, non_trainable, batch)):
            if is_statistic[index]:
                sums[index] += len(batch) * tf.cast(value, tf.float64)
                if paths[index].endswith(_MEAN):
                    square_sums[index] += len(batch) * tf.square(tf.cast(value, tf.float64))
    index_of = {path: index for index, path in enumerate(paths)}
    values = list(non_trainable)
    for index, path in enumerate(paths):
        if not is_statistic[index]:
            continue
        dtype = model.non_trainable_variables[index].dtype
        if path.endswith(_MEAN):
            values[index] = tf.cast(sums[index] / len(inputs), dtype)
        else:
            mean_index = index_of[path[:-len(_VARIANCE)] + _MEAN]
            mean = sums[mean_index] / len(inputs)
            variance = (sums[index] + square_sums[mean_index]) / len(inputs) - tf.square(mean)
            values[index] = tf.cast(tf.maximum(variance, 0.0), dtype)
    return values


def interpolation_curve(model_1: keras.Model, model_2: keras.Model,
                        data: Mapping[str, tuple[np.ndarray, np.ndarray]], alphas: np.ndarray, *,
                        batch_size: int = 512, bn_statistics: str = "recompute",
                        progress: progress_lib.Progress | None = None) -> list[dict[str, float]]:
    """One row per a: {"alpha", "<split>_loss", "<split>_accuracy" for each split of `data`} (mean cross-entropy
    and accuracy at θ(a) over each split's (inputs, labels)); with bn_statistics="interpolate" also
    "bn_variances_clipped". "recompute" takes the statistics from data["train"]'s inputs. `progress`: one step per
    point."""
    if bn_statistics not in BN_STATISTICS:
        raise ValueError(f"bn_statistics must be one of {', '.join(BN_STATISTICS)}; got {bn_statistics!r}")
    if bn_statistics == "recompute" and "train" not in data:
        raise ValueError("bn_statistics='recompute' needs the training split in `data`")
    _check_same_structure(model_1.trainable_variables, model_2.trainable_variables, "trainable")
    _check_same_structure(model_1.non_trainable_variables, model_2.non_trainable_variables, "non-trainable")

    @tf.function(reduce_retracing=True)
    def batch_sums(trainable, non_trainable, images, labels):
        logits, _ = model_1.stateless_call(trainable, non_trainable, images, training=False)
        logits = tf.cast(logits, tf.float32)
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return (tf.reduce_sum(tf.cast(cross_entropy(logits, labels), tf.float64)),
                tf.reduce_sum(tf.cast(correct, tf.float64)))

    @tf.function(reduce_retracing=True)
    def batch_statistics(trainable, non_trainable, images):
        return model_1.stateless_call(trainable, non_trainable, images, training=True)[1]

    rows = []
    task = progress_lib.task(progress, "interpolation", len(alphas), "point")
    with task, _ZeroMomentum(model_1):  # The momenta are traced (and so read) only by batch_statistics.
        for alpha in alphas:
            clipped = [0]
            trainable = _interpolate(model_1.trainable_variables, model_2.trainable_variables, float(alpha))
            non_trainable = _interpolate(model_1.non_trainable_variables, model_2.non_trainable_variables,
                                         float(alpha), clipped)
            row = {"alpha": float(alpha)}
            if bn_statistics == "recompute":
                non_trainable = _recomputed(model_1, batch_statistics, trainable, non_trainable,
                                            data["train"][0], batch_size)
            else:
                row["bn_variances_clipped"] = clipped[0]
            for split, (inputs, labels) in data.items():
                if len(inputs) == 0:
                    raise ValueError(f"split {split!r} has no examples")
                loss_sum = correct_sum = 0.0
                for start in range(0, len(inputs), batch_size):
                    batch_loss, batch_correct = batch_sums(trainable, non_trainable, inputs[start:start + batch_size],
                                                           labels[start:start + batch_size])
                    loss_sum += float(batch_loss)
                    correct_sum += float(batch_correct)
                row[f"{split}_loss"], row[f"{split}_accuracy"] = loss_sum / len(inputs), correct_sum / len(inputs)
            rows.append(row)
            task.step(**{key: value for key, value in row.items() if key == "alpha" or key.endswith("_loss")})
    return rows


def clipped_variance_warning(rows: list[dict[str, float]]) -> str | None:
    """A line naming the values of a at which moving variances were clipped, or None."""
    clipped = [row for row in rows if row.get("bn_variances_clipped")]
    if not clipped:
        return None
    alphas = ", ".join(f"{row['alpha']:g}" for row in clipped)
    return (f"warning: batch-norm moving variances extrapolated below 0 were clipped to 0 at a = {alphas} "
            f"({max(row['bn_variances_clipped'] for row in clipped)} entries at most); the losses there are "
            "artefacts of the clipping. --interpolation_bn=recompute recomputes the statistics at each point.")


def write_interpolation_csv(rows: list[dict[str, float]], path: str | os.PathLike) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_interpolation(rows: list[dict[str, float]], path: str | os.PathLike, title: str = "") -> None:
    """Keskar et al. Figure 3 style: cross-entropy on the left axis, accuracy on the right; solid lines for
    the training split, dashed for the test split."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = [row["alpha"] for row in rows]
    splits = [key[:-len("_loss")] for key in rows[0] if key.endswith("_loss")]
    figure, loss_axis = plt.subplots(figsize=(6, 4))
    accuracy_axis = loss_axis.twinx()
    for split in splits:
        style = "-" if split == "train" else "--"
        loss_axis.plot(alphas, [row[f"{split}_loss"] for row in rows], style, color="tab:blue",
                       label=f"{split} cross-entropy")
        accuracy_axis.plot(alphas, [100 * row[f"{split}_accuracy"] for row in rows], style, color="tab:red",
                           label=f"{split} accuracy")
    loss_axis.set_xlabel("a   (θ = a·θ₂ + (1 − a)·θ₁)")
    loss_axis.set_ylabel("cross-entropy", color="tab:blue")
    loss_axis.set_yscale("log")
    accuracy_axis.set_ylabel("accuracy (%)", color="tab:red")
    accuracy_axis.set_ylim(0, 100)
    handles = loss_axis.get_legend_handles_labels()[0] + accuracy_axis.get_legend_handles_labels()[0]
    loss_axis.legend(handles=handles, loc="best", fontsize="small", framealpha=0.8)
    if title:
        loss_axis.set_title(title, fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
