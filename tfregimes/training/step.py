"""The training step. The network stays a plain Keras model; `RegimeModel` wraps it and owns the step, which is
where later regimes (regularizers, clipping, phase switches) hook in."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf


class RegimeModel(keras.Model):
    """Trains `network` with Keras' compile/fit, adding coupled L2 weight decay.

    Coupled decay adds λ/2·‖w‖² over the selected weights to the minimized loss, i.e. λ·w to their gradients
    (PyTorch's and the papers' convention); the logged loss is the data loss alone. Keras divides its losses by the
    replica count under tf.distribute and sums gradients across replicas, so the penalty is divided by it too.
    Adding it to the loss (not to the gradients) keeps it right under loss scaling.
    """

    def __init__(self, network: keras.Model, *, weight_decay: float = 0.0,
                 decay_variables: Sequence[keras.Variable] = (), **kwargs):
        super().__init__(name=kwargs.pop("name", f"regime_{network.name}"), **kwargs)
        self.network = network
        self.weight_decay = float(weight_decay)
        self.decay_variables = list(decay_variables)

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def weight_decay_penalty(self) -> tf.Tensor:
        """λ/2·Σ‖w‖² over the decayed weights, divided by the number of replicas."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        squares = [tf.reduce_sum(tf.square(tf.convert_to_tensor(v))) for v in self.decay_variables]
        return (0.5 * self.weight_decay / replicas) * tf.add_n(squares)

    def train_step(self, data):
        x, y = data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=logits, training=True)
            # As Keras' own train_step: track the per-example loss, undoing the division by the replica count.
            self._loss_tracker.update_state(loss * replicas, sample_weight=tf.shape(x)[0])
            if self.weight_decay and self.decay_variables:
                loss = loss + self.weight_decay_penalty()
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.compute_metrics(x, y, logits)
