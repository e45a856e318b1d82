"""Multilayer perceptrons: `mlp` for small offline data (Keskar et al.'s F1, F2 in keskar.py)."""

from __future__ import annotations

import keras

from tfregimes.models.core import NORM_OPTIONS, ModelOptions, register_model, reject_unused_options
from tfregimes.models.norm_layers import batch_norm


def mlp(input_shape: tuple[int, ...], num_classes: int, options: ModelOptions, *,
        hidden_sizes: tuple[int, ...] | None = None, use_batch_norm: bool = False,
        name: str = "mlp") -> keras.Model:
    """Flatten -> [Dense -> (BN) -> ReLU -> (dropout)] per hidden size -> Dense logits.

    `hidden_sizes=None` takes `options.hidden_sizes`; any input shape is flattened first.
    """
    used = {"dropout"} | (NORM_OPTIONS if use_batch_norm else set())
    if hidden_sizes is None:
        used.add("hidden_sizes")
    reject_unused_options(options, name, used)
    hidden_sizes = options.hidden_sizes if hidden_sizes is None else hidden_sizes
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden_sizes):
        # Dense bias is redundant before BN's beta.
        x = keras.layers.Dense(units, use_bias=not use_batch_norm, name=f"dense{i + 1}")(x)
        if use_batch_norm:
            x = batch_norm(options, name=f"bn{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
        if options.dropout > 0:
            x = keras.layers.Dropout(options.dropout, name=f"dropout{i + 1}")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


register_model("mlp", mlp, paper="multilayer perceptron (--hidden_sizes)",
               input_shape=(8, 8, 1), num_classes=10)
