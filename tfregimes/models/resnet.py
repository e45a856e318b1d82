"""ImageNet-style ResNets (He et al. 2016): ResNet-18 (basic blocks) and ResNet-50 (bottleneck
blocks), with an ImageNet or a CIFAR stem, seed 000's zero-init residual option, and seed 002's
scale-invariant ResNet-18."""

from __future__ import annotations

import dataclasses
import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import bn_relu, conv2d, image_input
from tfregimes.models.norm_layers import GhostBatchNormalization, batch_norm

# The side at or below which stem="auto" picks the CIFAR stem (CIFAR 32, Tiny ImageNet 64).
CIFAR_STEM_MAX_SIDE = 64
# seed 002 §3.1: ghost batch normalization with a ghost batch of 64.
SCALE_INVARIANT_GHOST_BATCH = 64


def _projection_or_identity(x, filters: int, strides: int, options: ModelOptions, name: str):
    """Identity shortcut, or a 1x1 conv + BN where the shape changes (option B)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    shortcut = conv2d(x, filters, 1, strides=strides, name=f"{name}_shortcut_conv")
    return batch_norm(options, name=f"{name}_shortcut_bn")(shortcut)


def _close_block(shortcut, residual, options: ModelOptions, name: str):
    """Last BN of the residual branch (gamma 0 with zero_init_residual, seed 000 A.2), add, ReLU."""
    residual = batch_norm(options, name=f"{name}_bn_last",
                          zero_gamma=options.zero_init_residual)(residual)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def basic_block(x, filters: int, strides: int, options: ModelOptions, name: str):
    shortcut = _projection_or_identity(x, filters, strides, options, name)
    y = conv2d(x, filters, 3, strides=strides, name=f"{name}_conv1")
    y = bn_relu(y, options, name=f"{name}_1")
    y = conv2d(y, filters, 3, name=f"{name}_conv2")
    return _close_block(shortcut, y, options, name)


def bottleneck_block(x, filters: int, strides: int, options: ModelOptions, name: str):
    """1x1 (filters) - 3x3 (filters, carries the stride, as in torchvision) - 1x1 (4 x filters)."""
    shortcut = _projection_or_identity(x, 4 * filters, strides, options, name)
    y = conv2d(x, filters, 1, name=f"{name}_conv1")
    y = bn_relu(y, options, name=f"{name}_1")
    y = conv2d(y, filters, 3, strides=strides, name=f"{name}_conv2")
    y = bn_relu(y, options, name=f"{name}_2")
    y = conv2d(y, 4 * filters, 1, name=f"{name}_conv3")
    return _close_block(shortcut, y, options, name)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def _stem(x, options: ModelOptions, width: int):
    stem = options.stem
    if stem == "auto":
        stem = "cifar" if max(x.shape[1:3]) <= CIFAR_STEM_MAX_SIDE else "imagenet"
    if stem == "cifar":  # a 3x3/1 conv and no pooling keeps 32x32 inputs at full resolution
        return bn_relu(conv2d(x, width, 3, name="stem_conv"), options, name="stem")
    x = bn_relu(conv2d(x, width, 7, strides=2, name="stem_conv"), options, name="stem")
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def _scale_invariant_head(x, num_classes: int, options: ModelOptions):
    """seed 002 §3.1: a normalization without affine parameters after global pooling and a
    fixed (non-trainable) final dense layer, so no trainable weight escapes a normalization."""
    x = GhostBatchNormalization(virtual_batch_size=options.ghost_batch_size,
                                momentum=options.bn_momentum, epsilon=options.bn_epsilon,
                                center=False, scale=False, name="pool_norm")(x)
    return keras.layers.Dense(num_classes, use_bias=False, trainable=False, name="logits")(x)


def resnet(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
           block: str, stage_sizes: tuple[int, ...], base_width: int = 64,
           scale_invariant: bool = False, name: str) -> keras.Model:
    """Stem, stages of `stage_sizes[i]` blocks of base_width * 2**i filters (stride 2 at the start
    of every stage after the first), global average pooling, dense logits."""
    reject_unused_options(options, name, NORM_OPTIONS | {"zero_init_residual", "stem"})
    if scale_invariant and options.ghost_batch_size is None:
        options = dataclasses.replace(options, ghost_batch_size=SCALE_INVARIANT_GHOST_BATCH)
    block_fn = BLOCKS[block]
    inputs = image_input(input_shape, family=name)
    x = _stem(inputs, options, base_width)
    for stage, num_blocks in enumerate(stage_sizes):
        for index in range(num_blocks):
            strides = 2 if stage > 0 and index == 0 else 1
            x = block_fn(x, base_width * 2 ** stage, strides, options,
                         name=f"stage{stage + 1}_block{index + 1}")
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if scale_invariant:
        outputs = _scale_invariant_head(x, num_classes, options)
    else:
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


HE_2016 = "He et al. 2016, Deep Residual Learning (ImageNet ResNet; CIFAR stem for <= 64 px)"
_VARIANTS = {
    # name: (block, stage sizes, base width, scale invariant, paper, default input, classes)
    "resnet18": ("basic", (2, 2, 2, 2), 64, False,
                 HE_2016 + "; seed 001", (32, 32, 3), 10),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 64, False,
                 HE_2016 + "; ImageNet in seed 000 (--zero_init_residual)", (224, 224, 3), 1000),
    "resnet_tiny": ("bottleneck", (1, 1), 8, False,
                    "tiny bottleneck ResNet (ResNet-50's block) for tests", (32, 32, 3), 10),
    "scale_invariant_resnet18": ("basic", (2, 2, 2, 2), 64, True,
                                 "Yun et al. 2022 scale-invariant ResNet-18 (seed 002, §3.1)",
                                 (32, 32, 3), 10),
    "scale_invariant_resnet_tiny": ("basic", (1, 1), 8, True,
                                    "tiny scale-invariant ResNet (seed 002, §3.1): tests and the CPU reproduction",
                                    (32, 32, 3), 10),
}
for _name, (_block, _sizes, _width, _invariant, _paper, _shape, _classes) in _VARIANTS.items():
    register_model(_name, functools.partial(resnet, block=_block, stage_sizes=_sizes,
                                            base_width=_width, scale_invariant=_invariant,
                                            name=_name),
                   paper=_paper, input_shape=_shape, num_classes=_classes)
