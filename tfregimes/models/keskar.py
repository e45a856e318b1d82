"""The six networks of Keskar et al. 2017 (seed 003, Table 1 and appendix B).

F1 and F2 are batch-normalized MLPs (variants of `mlp`). C1/C3 (shallow, AlexNet-like) and
C2/C4 (deep, VGG-like) follow the layouts of the authors' public `network_zoo.py`
(`shallownet`, `deepnet`): every conv and hidden dense layer is followed by BN and ReLU, and the
dropout rates are part of the architecture (`options.dropout` does not change them).

Where these builds differ from the authors' zoo (Keras 1 code; found by the audit of issue 11), and why:
- No conv (or hidden dense) bias: BN follows every one and its β makes a bias redundant. The zoo's layers keep
  theirs: C1 has 64 + 64 + 384 + 192 = 704 more parameters, C2/C4 4,224 + 512 = 4,736 more; the function class
  is the same.
- He-normal initialization of the convolutions (`layers.CONV_INITIALIZER`), Glorot-uniform for dense layers
  (Keras' default); the zoo uses Keras 1's default, Glorot-uniform, everywhere. This changes the starting point,
  hence the minimum a run reaches, not the architecture.
- Inference-mode BN at test time (moving averages, momentum `--bn_momentum`); the zoo evaluates with batch
  statistics. Loss, accuracy and every metric at a minimum here (sharpness included, whose maximization runs in
  inference mode) see the fixed moving statistics; with batch statistics a perturbation of the weights is also
  partly normalized away, so sharpness values are not comparable one to one with Keskar et al.'s tables.
"""

from __future__ import annotations

import functools

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.layers import conv2d, image_input
from tfregimes.models.mlp import mlp
from tfregimes.models.norm_layers import batch_norm

POOL = "pool"
# (filters, dropout after the ReLU) per conv, POOL for a 2x2/2 max-pool: the deep net's layout.
DEEP_CONVS = ((64, 0.3), (64, 0.0), POOL, (128, 0.4), (128, 0.0), POOL,
              (256, 0.4), (256, 0.4), (256, 0.0), POOL, (512, 0.4), (512, 0.4), (512, 0.0), POOL,
              (512, 0.4), (512, 0.4), (512, 0.0), POOL)


def _dense_bn_relu(x, units: int, options: ModelOptions, dropout: float, name: str):
    x = keras.layers.Dense(units, use_bias=False, name=f"{name}_dense")(x)
    x = batch_norm(options, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x


def _conv_bn_relu(x, filters: int, kernel_size: int, options: ModelOptions, name: str):
    x = conv2d(x, filters, kernel_size, name=f"{name}_conv")
    x = batch_norm(options, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def keskar_shallow_convnet(input_shape: tuple[int, ...], num_classes: int,
                           options: ModelOptions, *, name: str) -> keras.Model:
    """C1 / C3: two [5x5 conv 64, BN, ReLU, 3x3/2 max-pool] stages, then dense 384 and 192
    (BN, ReLU, dropout 0.5 each) and the logits."""
    reject_unused_options(options, name, NORM_OPTIONS)
    inputs = image_input(input_shape, family=name)
    x = inputs
    for stage in (1, 2):
        x = _conv_bn_relu(x, 64, 5, options, name=f"conv{stage}")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{stage}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _dense_bn_relu(x, 384, options, 0.5, name="fc1")
    x = _dense_bn_relu(x, 192, options, 0.5, name="fc2")
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def keskar_deep_convnet(input_shape: tuple[int, ...], num_classes: int,
                        options: ModelOptions, *, name: str) -> keras.Model:
    """C2 / C4: the 13 3x3 conv-BN-ReLU layers of `DEEP_CONVS`, dropout 0.5, dense 512 (BN,
    ReLU, dropout 0.5) and the logits."""
    reject_unused_options(options, name, NORM_OPTIONS)
    inputs = image_input(input_shape, family=name)
    x = inputs
    conv_index = pool_index = 0
    for entry in DEEP_CONVS:
        if entry == POOL:
            pool_index += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{pool_index}")(x)
            continue
        filters, dropout = entry
        conv_index += 1
        x = _conv_bn_relu(x, filters, 3, options, name=f"conv{conv_index}")
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"conv{conv_index}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="flatten_dropout")(x)
    x = _dense_bn_relu(x, 512, options, 0.5, name="fc1")
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


KESKAR = "Keskar et al. 2017, On Large-Batch Training (seed 003, appendix B)"
# B.1: 784 inputs, 5 batch-normalized ReLU layers of 512, 10 outputs (MNIST).
register_model("f1", functools.partial(mlp, hidden_sizes=(512,) * 5, use_batch_norm=True,
                                       name="f1"),
               paper=KESKAR + " F1 (MNIST)", input_shape=(28, 28, 1), num_classes=10)
# F1 at a quarter of its width (5 batch-normalized ReLU layers of 128): the CPU-scale reproduction of seed 003
# (scripts/reproduce_keskar.py), 8.7x fewer weights than F1.
register_model("f1_narrow", functools.partial(mlp, hidden_sizes=(128,) * 5, use_batch_norm=True,
                                              name="f1_narrow"),
               paper=KESKAR + " F1 at width 128 (CPU-scale reproduction)", input_shape=(28, 28, 1), num_classes=10)
# B.2: 360 inputs (TIMIT frames), 7 batch-normalized ReLU layers of 512, 1973 classes.
register_model("f2", functools.partial(mlp, hidden_sizes=(512,) * 7, use_batch_norm=True,
                                       name="f2"),
               paper=KESKAR + " F2 (TIMIT-sized; data not public)", input_shape=(360,),
               num_classes=1973)
for _name, _builder, _classes in (("c1", keskar_shallow_convnet, 10),
                                  ("c2", keskar_deep_convnet, 10),
                                  ("c3", keskar_shallow_convnet, 100),
                                  ("c4", keskar_deep_convnet, 100)):
    register_model(_name, functools.partial(_builder, name=_name),
                   paper=f"{KESKAR} {_name.upper()} (CIFAR-{_classes})",
                   input_shape=(32, 32, 3), num_classes=_classes)
