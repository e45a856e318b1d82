"""Robustness: how much the network's output moves with its input (seed 004 §7.1, after Sokolić et al. 2017).

    robustness = (1/N) Σ_{x∈S} ‖J_x[f_w(x)]‖²

with f_w(x) the softmax output (seed 004 §3.1: f_w(x)_i is the probability of class i) and J_x its Jacobian with
respect to the (normalized) input, K × D per example. The norm is seed 004's ‖·‖₂, the spectral norm (largest
singular value), by default; norm="frobenius" gives Sokolić et al.'s Frobenius form. output="logits"
differentiates the logits instead.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

NORMS = ("frobenius", "spectral")
OUTPUTS = ("probabilities", "logits")


def input_jacobian_norms(model: keras.Model, inputs: np.ndarray, *, norm: str = "spectral",
                         output: str = "probabilities", batch_size: int = 64) -> np.ndarray:
    """‖J_x[f_w(x)]‖² per example, float64. Inference mode (BN moving statistics, no dropout)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")

    @tf.function(reduce_retracing=True)
    def squared_norms(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = tf.cast(model(images, training=False), tf.float32)
            if output == "probabilities":
                outputs = tf.nn.softmax(outputs, axis=-1)
        jacobian = tape.batch_jacobian(outputs, images)
        jacobian = tf.cast(tf.reshape(jacobian, [tf.shape(jacobian)[0], tf.shape(jacobian)[1], -1]), tf.float64)
        if norm == "frobenius":
            return tf.reduce_sum(tf.square(jacobian), axis=[1, 2])
        return tf.square(tf.linalg.svd(jacobian, compute_uv=False)[:, 0])

    if len(inputs) == 0:
        raise ValueError("need at least one example")
    return np.concatenate([squared_norms(tf.constant(inputs[i:i + batch_size], tf.float32)).numpy()
                           for i in range(0, len(inputs), batch_size)])


def robustness(model: keras.Model, inputs: np.ndarray, *, norm: str = "spectral", output: str = "probabilities",
               batch_size: int = 64) -> dict:
    """The mean of ‖J_x[f_w(x)]‖² over `inputs`, with its settings."""
    values = input_jacobian_norms(model, inputs, norm=norm, output=output, batch_size=batch_size)
    return {"value": float(np.mean(values)), "norm": norm, "output": output, "examples": len(values)}
