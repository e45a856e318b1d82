"""CIFAR ResNets of He et al. 2016 (depth 6n + 2, option A shortcuts) and the pre-activation
variant of He et al. 2016b that seed 004 (appendix E) trains as ResNet-20."""

from __future__ import annotations

import functools

import keras
from keras import ops

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import bn_relu, conv2d, image_input, logits_head
from tfregimes.models.norm_layers import batch_norm

STAGE_WIDTHS = (16, 32, 64)


@keras.saving.register_keras_serializable(package="tfregimes")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al. 2016, §4.2 option A: a parameter-free shortcut that subsamples with `strides`
    and pads the new channels with zeros (split evenly before and after the old ones)."""

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, inputs):
        x = inputs[:, ::self.strides, ::self.strides, :]
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        subsample = lambda side: None if side is None else -(-side // self.strides)  # noqa: E731
        return (batch, subsample(height), subsample(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _shortcut(x, filters: int, strides: int, name: str):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return ZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)


def _basic_block(x, filters: int, strides: int, options: ModelOptions, name: str):
    """conv-BN-ReLU-conv-BN, add the shortcut, ReLU (He et al. 2016, Fig. 2)."""
    shortcut = _shortcut(x, filters, strides, name)
    y = conv2d(x, filters, 3, strides=strides, name=f"{name}_conv1")
    y = bn_relu(y, options, name=f"{name}_1")
    y = conv2d(y, filters, 3, name=f"{name}_conv2")
    y = batch_norm(options, name=f"{name}_bn2", zero_gamma=options.zero_init_residual)(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _preact_block(x, filters: int, strides: int, options: ModelOptions, name: str):
    """BN-ReLU-conv-BN-ReLU-conv plus the shortcut (He et al. 2016b, Fig. 1b). A block that
    changes shape takes its shortcut from the pre-activated input, as the authors' code does."""
    preactivated = bn_relu(x, options, name=f"{name}_1")
    changes_shape = strides != 1 or x.shape[-1] != filters
    shortcut = _shortcut(preactivated if changes_shape else x, filters, strides, name)
    y = conv2d(preactivated, filters, 3, strides=strides, name=f"{name}_conv1")
    y = bn_relu(y, options, name=f"{name}_2")
    y = conv2d(y, filters, 3, name=f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def cifar_resnet(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
                 depth: int, preact: bool = False) -> keras.Model:
    """ResNet-`depth` for 32x32 inputs: a 3x3 conv of 16, three stages of n = (depth - 2) / 6
    basic blocks of 16, 32, 64 filters (stride 2 at the start of stages 2 and 3), global
    average pooling and a dense layer."""
    if (depth - 2) % 6 != 0:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
    name = f"{'preact_' if preact else ''}resnet{depth}"
    # zero_init_residual needs a BN closing each block; pre-activation blocks have none.
    reject_unused_options(options, name,
                          NORM_OPTIONS if preact else NORM_OPTIONS | {"zero_init_residual"})
    blocks_per_stage = (depth - 2) // 6
    inputs = image_input(input_shape, family=name)
    x = conv2d(inputs, STAGE_WIDTHS[0], 3, name="stem_conv")
    if not preact:
        x = bn_relu(x, options, name="stem")
    block = _preact_block if preact else _basic_block
    for stage, filters in enumerate(STAGE_WIDTHS, start=1):
        for index in range(blocks_per_stage):
            strides = 2 if stage > 1 and index == 0 else 1
            x = block(x, filters, strides, options, name=f"stage{stage}_block{index + 1}")
    if preact:
        x = bn_relu(x, options, name="final")
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


HE_2016 = "He et al. 2016, Deep Residual Learning (CIFAR-10, option A)"
for _depth in (8, 20, 32, 44, 56, 110):  # resnet8 (n = 1) is the tiny variant for tests
    register_model(f"resnet{_depth}", functools.partial(cifar_resnet, depth=_depth),
                   paper=HE_2016, input_shape=(32, 32, 3), num_classes=10)
register_model("preact_resnet20", functools.partial(cifar_resnet, depth=20, preact=True),
               paper="He et al. 2016b pre-activation ResNet-20 (seed 004, appendix E)",
               input_shape=(32, 32, 3), num_classes=10)
