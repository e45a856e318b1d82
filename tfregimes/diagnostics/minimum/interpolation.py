"""1-D linear interpolation between two trained networks (Goodfellow et al. 2015; Keskar et al. 2017 Figure 3,
seed 003): loss and accuracy along θ(a) = a·θ₂ + (1 − a)·θ₁, a ∈ [−1, 2] by default.

θ is every float variable of the network: trainable weights and batch normalization's moving statistics, so
that each point is evaluated as a trained model would be (inference mode). Beyond a ∈ [0, 1] a moving variance
can extrapolate below zero; it is clipped at 0 (the layer's ε keeps the division finite). Integer state (e.g. a
dropout seed) is taken from θ₁. Neither model's variables are written: points go through `stateless_call`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

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


def _interpolate(first, second, alpha: float) -> list[tf.Tensor]:
    values = []
    for variable_1, variable_2 in zip(first, second):
        value_1, value_2 = tf.convert_to_tensor(variable_1), tf.convert_to_tensor(variable_2)
        if not value_1.dtype.is_floating:
            values.append(value_1)
            continue
        value = alpha * value_2 + (1.0 - alpha) * value_1
        if variable_1.path.endswith("moving_variance"):
            value = tf.maximum(value, 0.0)
        values.append(value)
    return values


def interpolation_curve(model_1: keras.Model, model_2: keras.Model,
                        data: Mapping[str, tuple[np.ndarray, np.ndarray]], alphas: np.ndarray, *,
                        batch_size: int = 512) -> list[dict[str, float]]:
    """One row per a: {"alpha", "<split>_loss", "<split>_accuracy" for each split of `data`} (mean cross-entropy
    and accuracy at θ(a) over each split's (inputs, labels))."""
    _check_same_structure(model_1.trainable_variables, model_2.trainable_variables, "trainable")
    _check_same_structure(model_1.non_trainable_variables, model_2.non_trainable_variables, "non-trainable")

    @tf.function(reduce_retracing=True)
    def batch_sums(trainable, non_trainable, images, labels):
        logits, _ = model_1.stateless_call(trainable, non_trainable, images, training=False)
        logits = tf.cast(logits, tf.float32)
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return (tf.reduce_sum(tf.cast(cross_entropy(logits, labels), tf.float64)),
                tf.reduce_sum(tf.cast(correct, tf.float64)))

    rows = []
    for alpha in alphas:
        trainable = _interpolate(model_1.trainable_variables, model_2.trainable_variables, float(alpha))
        non_trainable = _interpolate(model_1.non_trainable_variables, model_2.non_trainable_variables, float(alpha))
        row = {"alpha": float(alpha)}
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
    return rows


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
