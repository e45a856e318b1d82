"""Building blocks shared by the model families (conv, conv-BN-ReLU, logits head)."""

from __future__ import annotations

import keras

from tfregimes.models.core import ModelOptions
from tfregimes.models.norm_layers import batch_norm

# He et al. 2015 initialization, which the ResNet, WRN, DenseNet and plain-CNN papers use.
CONV_INITIALIZER = "he_normal"


def conv2d(x, filters: int, kernel_size: int, *, strides: int = 1, use_bias: bool = False,
           name: str | None = None):
    """A same-padded convolution; no bias by default because a normalization follows it."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=use_bias, kernel_initializer=CONV_INITIALIZER,
                               name=name)(x)


def conv_bn_relu(x, filters: int, kernel_size: int, options: ModelOptions, *, strides: int = 1,
                 name: str):
    x = conv2d(x, filters, kernel_size, strides=strides, name=f"{name}_conv")
    x = batch_norm(options, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def bn_relu(x, options: ModelOptions, *, name: str):
    x = batch_norm(options, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def logits_head(x, num_classes: int, *, name: str = "logits"):
    """Global average pooling then a dense layer to logits (no softmax: losses use from_logits)."""
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.layers.Dense(num_classes, name=name)(x)


def image_input(input_shape: tuple[int, ...], *, family: str) -> keras.KerasTensor:
    """The input of an image model; fails with a readable message on a non-image shape."""
    if len(input_shape) != 3:
        raise ValueError(f"{family} needs image inputs (height, width, channels), "
                         f"got input_shape={input_shape}")
    return keras.Input(shape=input_shape, name="image")
