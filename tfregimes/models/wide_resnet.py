"""Wide ResNets (Zagoruyko & Komodakis 2016): WRN-d-k, pre-activation B(3,3) blocks.

seed 000 trains WRN-28-10 (CIFAR-100) and WRN-16-8 with dropout 0.5 (SVHN); seed 004 trains
WRN-28-2. `wrn` reads depth and width from the options; the named variants fix them.
"""

from __future__ import annotations

import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import bn_relu, conv2d, image_input, logits_head


def _wide_block(x, filters: int, strides: int, options: ModelOptions, name: str):
    """BN-ReLU-conv3x3-[dropout]-BN-ReLU-conv3x3 plus the shortcut; a block that changes shape
    takes a 1x1 convolution of the pre-activated input as its shortcut (the authors' code)."""
    preactivated = bn_relu(x, options, name=f"{name}_1")
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv2d(preactivated, filters, 1, strides=strides, name=f"{name}_shortcut")
    else:
        shortcut = x
    y = conv2d(preactivated, filters, 3, strides=strides, name=f"{name}_conv1")
    y = bn_relu(y, options, name=f"{name}_2")
    if options.dropout > 0:
        y = keras.layers.Dropout(options.dropout, name=f"{name}_dropout")(y)
    y = conv2d(y, filters, 3, name=f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def wide_resnet(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
                depth: int | None = None, width: int | None = None) -> keras.Model:
    """WRN-depth-width: a 3x3 conv of 16, three stages of n = (depth - 4) / 6 blocks of 16k,
    32k, 64k filters (stride 2 at the start of stages 2 and 3), BN-ReLU, global average pooling,
    dense. `depth`/`width` default to `options.wrn_depth`/`options.wrn_width`; dropout between
    the convs of each block is `options.dropout`."""
    # zero_init_residual needs a BN closing each block; pre-activation blocks have none.
    used = NORM_OPTIONS | {"dropout"}
    if depth is None and width is None:
        used |= {"wrn_depth", "wrn_width"}
    depth = options.wrn_depth if depth is None else depth
    width = options.wrn_width if width is None else width
    reject_unused_options(options, f"wrn{depth}_{width}", used)
    if (depth - 4) % 6 != 0 or depth < 10:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
    if width < 1:
        raise ValueError(f"WRN width must be >= 1, got {width}")
    blocks_per_stage = (depth - 4) // 6
    name = f"wrn{depth}_{width}"
    inputs = image_input(input_shape, family=name)
    x = conv2d(inputs, 16, 3, name="stem_conv")
    for stage, filters in enumerate((16 * width, 32 * width, 64 * width), start=1):
        for index in range(blocks_per_stage):
            strides = 2 if stage > 1 and index == 0 else 1
            x = _wide_block(x, filters, strides, options, name=f"stage{stage}_block{index + 1}")
    x = bn_relu(x, options, name="final")
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


WRN = "Zagoruyko & Komodakis 2016, Wide Residual Networks"
register_model("wrn", wide_resnet, paper=WRN + " (--wrn_depth, --wrn_width, --dropout)",
               input_shape=(32, 32, 3), num_classes=10)
for _depth, _width, _paper, _classes in (
        (28, 10, WRN + "; CIFAR-100 in seed 000", 100),
        (16, 8, WRN + "; SVHN with --dropout=0.5 in seed 000", 10),
        (28, 2, WRN + "; pre-activation WRN-28-2 in seed 004", 10),
        (10, 1, WRN + "; tiny variant for tests", 10)):
    register_model(f"wrn{_depth}_{_width}",
                   functools.partial(wide_resnet, depth=_depth, width=_width),
                   paper=_paper, input_shape=(32, 32, 3), num_classes=_classes)
