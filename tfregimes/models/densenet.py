"""DenseNet-BC (Huang et al. 2017) for CIFAR: bottleneck layers and compression 0.5.
seed 004 (appendix E) trains DenseNet-BC with k = 12 and depth 100; seed 002's appendix
trains DenseNet-100 on CIFAR-100."""

from __future__ import annotations

import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import bn_relu, conv2d, image_input, logits_head

COMPRESSION = 0.5  # the "C" of BC: a transition keeps half of the channels
BOTTLENECK_FACTOR = 4  # the "B" of BC: a 1x1 conv to 4k channels before each 3x3 conv


def _dense_layer(x, growth_rate: int, options: ModelOptions, name: str):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k), concatenated to its input."""
    y = bn_relu(x, options, name=f"{name}_1")
    y = conv2d(y, BOTTLENECK_FACTOR * growth_rate, 1, name=f"{name}_conv1")
    y = _maybe_dropout(y, options, name=f"{name}_dropout1")
    y = bn_relu(y, options, name=f"{name}_2")
    y = conv2d(y, growth_rate, 3, name=f"{name}_conv2")
    y = _maybe_dropout(y, options, name=f"{name}_dropout2")
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def _transition(x, options: ModelOptions, name: str):
    """BN-ReLU-conv1x1 keeping COMPRESSION of the channels, 2x2 average pooling."""
    y = bn_relu(x, options, name=f"{name}")
    y = conv2d(y, int(x.shape[-1] * COMPRESSION), 1, name=f"{name}_conv")
    y = _maybe_dropout(y, options, name=f"{name}_dropout")
    return keras.layers.AveragePooling2D(2, padding="same", name=f"{name}_pool")(y)


def _maybe_dropout(x, options: ModelOptions, name: str):
    # Huang et al. use dropout 0.2 after each conv when training without augmentation.
    return keras.layers.Dropout(options.dropout, name=name)(x) if options.dropout > 0 else x


def densenet_bc(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
                depth: int, growth_rate: int) -> keras.Model:
    """A 3x3 conv of 2k channels, three dense blocks of (depth - 4) / 6 bottleneck layers with
    transitions between them, BN-ReLU, global average pooling, dense logits."""
    if (depth - 4) % 6 != 0 or depth < 10:
        raise ValueError(f"DenseNet-BC depth must be 6n + 4 with n >= 1, got {depth}")
    layers_per_block = (depth - 4) // 6
    name = f"densenet_bc{depth}_k{growth_rate}"
    reject_unused_options(options, name, NORM_OPTIONS | {"dropout"})
    inputs = image_input(input_shape, family=name)
    x = conv2d(inputs, 2 * growth_rate, 3, name="stem_conv")
    for block in range(1, 4):
        for layer in range(1, layers_per_block + 1):
            x = _dense_layer(x, growth_rate, options, name=f"block{block}_layer{layer}")
        if block < 3:
            x = _transition(x, options, name=f"transition{block}")
    x = bn_relu(x, options, name="final")
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


HUANG_2017 = "Huang et al. 2017, DenseNet-BC (seed 004, appendix E; seed 002, appendix)"
register_model("densenet_bc", functools.partial(densenet_bc, depth=100, growth_rate=12),
               paper=HUANG_2017 + ": depth 100, k = 12", input_shape=(32, 32, 3),
               num_classes=10)
register_model("densenet_bc_tiny", functools.partial(densenet_bc, depth=10, growth_rate=4),
               paper="tiny DenseNet-BC for tests (depth 10, k = 4)", input_shape=(32, 32, 3),
               num_classes=10)
