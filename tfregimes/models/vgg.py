"""VGG with batch normalization (Simonyan & Zisserman 2015 + Ioffe & Szegedy 2015) for CIFAR,
as Leclerc & Madry train it (seed 001, appendix C: "VGG-13 with extra batch norm layers")."""

from __future__ import annotations

import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import conv_bn_relu, image_input

POOL = "M"
# Simonyan & Zisserman 2015, Table 1, configurations B (13 layers) and E (19 layers).
CONFIGS = {
    "vgg13_bn": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg19_bn": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL,
                 512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL),
    "vgg5_bn": (16, POOL, 32, POOL, 64, 64, POOL),  # tiny variant for tests
}


def vgg(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
        config: str) -> keras.Model:
    """3x3 conv-BN-ReLU layers and 2x2 max-pools as in `CONFIGS[config]`, then the CIFAR-style
    classifier: global average pooling (the 1x1 map a 32x32 input leaves) and one dense layer
    (the common CIFAR adaptation; ImageNet VGG's two 4096-unit layers are left out)."""
    reject_unused_options(options, config, NORM_OPTIONS | {"dropout"})
    inputs = image_input(input_shape, family=config)
    x = inputs
    conv_index = pool_index = 0
    for entry in CONFIGS[config]:
        if entry == POOL:
            pool_index += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{pool_index}")(x)
        else:
            conv_index += 1
            x = conv_bn_relu(x, entry, 3, options, name=f"block{conv_index}")
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if options.dropout > 0:
        x = keras.layers.Dropout(options.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=config)


for _name in CONFIGS:
    register_model(_name, functools.partial(vgg, config=_name),
                   paper=("tiny VGG-BN for tests" if _name == "vgg5_bn" else
                          "Simonyan & Zisserman 2015 with BN, CIFAR head (seed 001, appendix C)"),
                   input_shape=(32, 32, 3), num_classes=10)
