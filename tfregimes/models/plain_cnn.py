"""Plain (non-residual) conv nets: the small default CNN and seed 004's 6-layer CNN."""

from __future__ import annotations

import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import conv2d, image_input, logits_head
from tfregimes.models.norm_layers import batch_norm


def plain_cnn(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
              filters: tuple[int, ...], pool_after: tuple[int, ...], use_batch_norm: bool,
              name: str) -> keras.Model:
    """3x3 conv [-> BN] -> ReLU per entry of `filters`, a 2x2 max-pool after the (1-based)
    convs listed in `pool_after`, then global average pooling and a dense layer to logits."""
    reject_unused_options(options, name, NORM_OPTIONS if use_batch_norm else set())
    inputs = image_input(input_shape, family=name)
    x = inputs
    for i, width in enumerate(filters, start=1):
        x = conv2d(x, width, 3, use_bias=not use_batch_norm, name=f"conv{i}")
        if use_batch_norm:
            x = batch_norm(options, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if i in pool_after:
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


# The default job's model: small enough for a few seconds per epoch of 8x8 digits on 2 CPU cores.
register_model("cnn_small", functools.partial(
    plain_cnn, filters=(32, 32, 64), pool_after=(2, 3), use_batch_norm=True, name="cnn_small"),
    paper="small CNN for 8x8 / 28x28 images (default job)", input_shape=(8, 8, 1), num_classes=10)
# seed 004 appendix E: filters 64, 64, 128, 128, 192, 192, 3x3, ReLU, 2x2 max-pool after convs
# 2 and 4, global average pooling, classifier; no normalization is mentioned, so none is used.
register_model("plain_cnn6", functools.partial(
    plain_cnn, filters=(64, 64, 128, 128, 192, 192), pool_after=(2, 4), use_batch_norm=False,
    name="plain_cnn6"),
    paper="Jia & Su 2020 (seed 004, appendix E) plain CNN", input_shape=(32, 32, 3),
    num_classes=10)
