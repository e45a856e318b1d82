"""The training step. The network stays a plain Keras model; `RegimeModel` wraps it and owns the step.

A regime that changes how gradients are computed (a regularizer such as the Fisher-trace penalty, SAM or a
proximal step) subclasses `RegimeModel` and overrides `compute_gradients`; weight decay, clipping and the
optimizer step stay here, shared by every regime.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfregimes.base import keras_private


def num_replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def global_norm(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    return tf.linalg.global_norm(list(tensors))


def clip_global_norm_across_replicas(gradients: Sequence[tf.Tensor], clip_norm: tf.Tensor | float,
                                     *, active: tf.Tensor | bool = True) -> list[tf.Tensor]:
    """Clips the GLOBAL gradient (the sum over replicas) to norm `clip_norm`; returns per-replica shares.

    Keras' optimizers sum gradients over replicas inside `apply` (and their own `global_clipnorm` clips each
    replica's part before that sum, i.e. the wrong norm). So: all-reduce first, clip the sum, and hand each replica
    1/n of the clipped sum for the optimizer to add back up. The all-reduce stays outside any control flow
    (MirroredStrategy cannot synchronize inside tf.cond/while bodies); `active` switches the clip arithmetically.
    """
    replicas = num_replicas()
    total = list(gradients)
    if replicas > 1:
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, total)
    norm = global_norm(total)
    factor = tf.minimum(1.0, tf.cast(clip_norm, norm.dtype) / tf.maximum(norm, 1e-30))
    factor = tf.where(tf.cast(active, tf.bool), factor, 1.0) / replicas
    return [g * tf.cast(factor, g.dtype) for g in total]


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _as_vectors(logs: dict) -> dict:
    """Keras 3.15 reduces per-replica logs with MEAN over axis 0 under MultiWorkerMirroredStrategy, which fails
    on scalars (keras-team/keras#20585); shape [1] reduces to the same scalar."""
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


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
        # clip_by_global_norm of the whole batch's gradient, across replicas (Keras' optimizer `global_clipnorm`
        # clips each replica's share instead); set per phase by the trainer.
        self.global_clipnorm = 0.0

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def weight_decay_penalty(self) -> tf.Tensor:
        """λ/2·Σ‖w‖² over the decayed weights, divided by the number of replicas (0 without decay)."""
        if not (self.weight_decay and self.decay_variables):
            return tf.constant(0.0)
        squares = [tf.reduce_sum(tf.square(tf.convert_to_tensor(v))) for v in self.decay_variables]
        return (0.5 * self.weight_decay / num_replicas()) * tf.add_n(squares)

    def data_loss(self, x, y, training: bool = True):
        """(per-replica data loss as Keras scales it, logits)."""
        logits = self(x, training=training)
        return self.compute_loss(x=x, y=y, y_pred=logits, training=training), logits

    def compute_gradients(self, x, y):
        """(data loss, logits, gradients of data loss + weight decay w.r.t. `self.trainable_variables`).

        Regimes override this; the gradients they return must include `weight_decay_penalty()`'s.
        """
        with tf.GradientTape() as tape:
            loss, logits = self.data_loss(x, y)
            total = loss + self.weight_decay_penalty()
            scaled = self.optimizer.scale_loss(total)
        return loss, logits, tape.gradient(scaled, self.trainable_variables)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("RegimeModel does not support sample weights")
        loss, logits, gradients = self.compute_gradients(x, y)
        if self.global_clipnorm:  # Gradients carry the loss scale (mixed precision): clip in the same units.
            scale = tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
            gradients = clip_global_norm_across_replicas(gradients, self.global_clipnorm * scale)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.step_logs(x, y, loss, logits)

    def step_logs(self, x, y, loss, logits) -> dict:
        """The step's logs, as Keras' own train_step makes them: the per-example loss (undoing the division by
        the replica count) and the compiled metrics."""
        keras_private.loss_tracker(self).update_state(loss * num_replicas(), sample_weight=tf.shape(x)[0])
        logs = self.compute_metrics(x, y, logits)
        return _as_vectors(logs) if is_multi_worker(self.distribute_strategy) else logs

    def test_step(self, data):
        logs = super().test_step(data)
        return _as_vectors(logs) if is_multi_worker(self.distribute_strategy) else logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras builds metrics on a data batch it first reduces across replicas, which fails under
        MultiWorkerMirroredStrategy (keras-team/keras#20585); one replica's local batch serves as well. A private
        hook: see `tfregimes.base.keras_private.OVERRIDDEN_HOOKS`."""
        if not is_multi_worker(self.distribute_strategy) or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        local = self.distribute_strategy.experimental_local_results
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: local(value)[0] if isinstance(value, tf.distribute.DistributedValues) else value,
                next(batches))
            break
        with self.distribute_strategy.scope():
            keras_private.symbolic_build(self, data_batch)
