"""A Keras classifier evaluated at any flat weight vector, without ever assigning its variables.

Every metric at a minimum looks at the loss near the trained weights w. `FlatModel` evaluates the network at
any w' given as one flat vector through `keras.Model.stateless_call`, so the model's own variables are never
written: there is nothing to restore. Evaluation is deterministic: `training=False` puts batch normalization in
inference mode (its moving statistics, kept as the model holds them) and turns dropout off; the inputs are the
arrays given, never augmented.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example softmax cross-entropy from logits (the training loss, without weight decay)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                          logits=tf.cast(logits, tf.float32))


class FlatModel:
    """`model` as a function of the flat vector of its trainable weights (in `model.trainable_variables` order)."""

    def __init__(self, model: keras.Model, batch_size: int = 512):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.shapes = [tuple(int(d) for d in v.shape) for v in model.trainable_variables]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.num_weights = sum(self.sizes)
        if self.num_weights == 0:
            raise ValueError("the model has no trainable weights")
        self._non_trainable = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]
        self._loss_and_gradient = tf.function(self._batch_loss_and_gradient, reduce_retracing=True)
        self._hessian_vector = tf.function(self._batch_hessian_vector, reduce_retracing=True)

    def weights(self) -> np.ndarray:
        """The model's current trainable weights as one float64 vector (a copy)."""
        return np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in self.model.trainable_variables])

    def unflatten(self, flat: tf.Tensor) -> list[tf.Tensor]:
        parts = tf.split(tf.cast(flat, tf.float32), self.sizes)
        return [tf.reshape(part, shape) for part, shape in zip(parts, self.shapes)]

    def logits(self, flat: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
        """Logits at weights `flat`, in inference mode (BN moving statistics, no dropout)."""
        outputs, _ = self.model.stateless_call(self.unflatten(flat), self._non_trainable, images, training=False)
        return tf.cast(outputs, tf.float32)

    def _batch_loss_and_gradient(self, flat, images, labels):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            loss_sum = tf.reduce_sum(cross_entropy(self.logits(flat, images), labels))
        return loss_sum, tape.gradient(loss_sum, flat)

    def _batch_hessian_vector(self, flat, vector, images, labels):
        # Double backprop: H v = d/dw <dL/dw, v>.
        with tf.GradientTape() as outer:
            outer.watch(flat)
            with tf.GradientTape() as inner:
                inner.watch(flat)
                loss_sum = tf.reduce_sum(cross_entropy(self.logits(flat, images), labels))
            directional = tf.reduce_sum(inner.gradient(loss_sum, flat) * vector)
        return outer.gradient(directional, flat)

    def _batches(self, inputs: np.ndarray, labels: np.ndarray):
        if len(inputs) == 0:
            raise ValueError("need at least one example")
        for start in range(0, len(inputs), self.batch_size):
            yield inputs[start:start + self.batch_size], labels[start:start + self.batch_size]

    def loss_and_gradient(self, flat: np.ndarray, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over (inputs, labels) at weights `flat`, and its gradient, in float64."""
        weights = tf.constant(flat, tf.float32)
        loss_sum, gradient_sum = 0.0, np.zeros(self.num_weights)
        for images, batch_labels in self._batches(inputs, labels):
            batch_loss, batch_gradient = self._loss_and_gradient(weights, images, batch_labels)
            loss_sum += float(batch_loss)
            gradient_sum += batch_gradient.numpy()
        return loss_sum / len(inputs), gradient_sum / len(inputs)

    def loss(self, flat: np.ndarray, inputs: np.ndarray, labels: np.ndarray) -> float:
        return self.loss_and_gradient(flat, inputs, labels)[0]

    def hessian_vector_product(self, flat: np.ndarray, vector: np.ndarray, inputs: np.ndarray,
                               labels: np.ndarray) -> np.ndarray:
        """H v, with H the Hessian of the mean cross-entropy over (inputs, labels) at `flat`."""
        weights, direction = tf.constant(flat, tf.float32), tf.constant(vector, tf.float32)
        product = np.zeros(self.num_weights)
        for images, batch_labels in self._batches(inputs, labels):
            product += self._hessian_vector(weights, direction, images, batch_labels).numpy()
        return product / len(inputs)
