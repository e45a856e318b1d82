"""Ghost batch normalization and the one place that decides which batch norm a model gets."""

from __future__ import annotations

import keras
from keras import ops

from tfregimes.models.core import ModelOptions


@keras.saving.register_keras_serializable(package="tfregimes")
class GhostBatchNormalization(keras.layers.Layer):
    """Batch normalization over "ghost" slices of the batch (Hoffer et al. 2017; seed 002 §3.1).

    In training, the batch is cut into consecutive slices of `virtual_batch_size` examples (the
    last one may be shorter) and each slice is normalized by its own mean and biased variance, so
    the statistics, and the gradient noise they bring, do not depend on the batch size. With
    `virtual_batch_size=None`, or not smaller than the batch, it is ordinary batch normalization.
    The moving statistics follow the average of the slices' means and variances with Keras'
    rule `moving = moving * momentum + batch * (1 - momentum)` and serve at inference.
    Channels are the last axis; inputs are (batch, channels) or (batch, ..., channels).
    `center=False, scale=False` gives the non-affine normalization seed 002 puts after pooling.
    """

    def __init__(self, virtual_batch_size: int | None = None, momentum: float = 0.9,
                 epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if virtual_batch_size is not None and virtual_batch_size < 1:
            raise ValueError(f"virtual_batch_size must be >= 1, got {virtual_batch_size}")
        self.virtual_batch_size = virtual_batch_size
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("GhostBatchNormalization needs a known channel (last) dimension")
        shape = (channels,)
        self.gamma = (self.add_weight(shape=shape, name="gamma", initializer=self.gamma_initializer)
                      if self.scale else None)
        self.beta = (self.add_weight(shape=shape, name="beta", initializer=self.beta_initializer)
                     if self.center else None)
        self.moving_mean = self.add_weight(shape=shape, name="moving_mean", initializer="zeros",
                                           trainable=False, autocast=False)
        self.moving_variance = self.add_weight(shape=shape, name="moving_variance",
                                               initializer="ones", trainable=False, autocast=False)

    def call(self, inputs, training=None):
        compute_dtype = inputs.dtype
        x = ops.cast(inputs, "float32")  # statistics in float32, as Keras' BatchNormalization does
        if training:
            mean, variance, batch_mean, batch_variance = self._ghost_moments(x)
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + batch_mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + batch_variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            outputs = outputs * ops.cast(self.gamma, "float32")
        if self.center:
            outputs = outputs + ops.cast(self.beta, "float32")
        return ops.cast(outputs, compute_dtype)

    def _ghost_moments(self, x):
        """Per-example mean and variance of its ghost slice, and their averages over slices."""
        spatial_axes = tuple(range(1, len(x.shape) - 1))
        if self.virtual_batch_size is None:
            mean, variance = ops.moments(x, axes=(0,) + spatial_axes, keepdims=True)
            return mean, variance, ops.reshape(mean, (-1,)), ops.reshape(variance, (-1,))
        batch = ops.shape(x)[0]
        ghost_ids = ops.arange(batch) // self.virtual_batch_size
        # Computed from the shape, not from the ids, so that XLA sees a compile-time constant.
        num_ghosts = (batch + self.virtual_batch_size - 1) // self.virtual_batch_size
        # Broadcasts per-ghost (ghosts, channels) statistics back to (batch, 1, ..., 1, channels).
        broadcast_shape = (-1,) + (1,) * len(spatial_axes) + (x.shape[-1],)

        def ghost_average(values):  # (batch, channels) -> (ghosts, channels)
            sums = ops.segment_sum(values, ghost_ids, num_segments=num_ghosts)
            counts = ops.segment_sum(ops.ones_like(values[:, :1]), ghost_ids,
                                     num_segments=num_ghosts)
            return sums / counts

        def per_example(values):  # (batch, ..., channels) -> (batch, channels)
            return ops.mean(values, axis=spatial_axes) if spatial_axes else values

        ghost_mean = ghost_average(per_example(x))
        mean = ops.reshape(ops.take(ghost_mean, ghost_ids, axis=0), broadcast_shape)
        ghost_variance = ghost_average(per_example(ops.square(x - mean)))
        variance = ops.reshape(ops.take(ghost_variance, ghost_ids, axis=0), broadcast_shape)
        return mean, variance, ops.mean(ghost_mean, axis=0), ops.mean(ghost_variance, axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            virtual_batch_size=self.virtual_batch_size, momentum=self.momentum,
            epsilon=self.epsilon, center=self.center, scale=self.scale,
            beta_initializer=keras.initializers.serialize(self.beta_initializer),
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer))
        return config


NORMALIZATION_LAYERS = (keras.layers.BatchNormalization, GhostBatchNormalization,
                        keras.layers.LayerNormalization, keras.layers.GroupNormalization)


def batch_norm(options: ModelOptions, *, name: str | None = None, zero_gamma: bool = False,
               center: bool = True, scale: bool = True) -> keras.layers.Layer:
    """The batch normalization a model uses: ghost BN when `options.ghost_batch_size` is set.

    `zero_gamma` starts gamma at 0 (the zero-init residual option, seed 000 A.2).
    """
    gamma_initializer = "zeros" if zero_gamma else "ones"
    if options.ghost_batch_size is not None:
        return GhostBatchNormalization(
            virtual_batch_size=options.ghost_batch_size, momentum=options.bn_momentum,
            epsilon=options.bn_epsilon, center=center, scale=scale,
            gamma_initializer=gamma_initializer, name=name)
    return keras.layers.BatchNormalization(
        momentum=options.bn_momentum, epsilon=options.bn_epsilon, center=center, scale=scale,
        gamma_initializer=gamma_initializer, name=name)
