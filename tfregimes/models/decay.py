"""Which weights weight decay applies to; the papers differ. seed 000 A.2 follows Goyal et al.
2017 (no decay on BN gamma/beta) but decays the final dense bias "like all the other weight
parameters" (`exclude_bn`); a common alternative also leaves every bias alone."""

from __future__ import annotations

import keras

from tfregimes.models.norm_layers import NORMALIZATION_LAYERS

DECAY_SCOPES = ("all", "exclude_bn", "exclude_bn_bias")


def _layers_recursive(layer: keras.layers.Layer):
    yield layer
    for sublayer in getattr(layer, "layers", ()):  # nested models, e.g. a keras.applications net
        yield from _layers_recursive(sublayer)


def _is_bias(variable) -> bool:
    return variable.path.rsplit("/", 1)[-1] in ("bias", "depthwise_bias", "pointwise_bias")


def decay_variables(model: keras.Model, scope: str) -> list:
    """The trainable variables of `model` that weight decay applies to under `scope`.

    "all": every trainable variable (kernels, biases, normalization gamma/beta).
    "exclude_bn": leaves out the gamma/beta of every normalization layer (BN, ghost BN,
    layer/group norm).
    "exclude_bn_bias": leaves out those and every bias too.
    """
    if scope not in DECAY_SCOPES:
        raise ValueError(f"unknown weight decay scope {scope!r}; valid: {', '.join(DECAY_SCOPES)}")
    if scope == "all":
        return list(model.trainable_variables)
    excluded = {id(v) for layer in _layers_recursive(model)
                if isinstance(layer, NORMALIZATION_LAYERS) for v in layer.trainable_variables}
    return [v for v in model.trainable_variables
            if id(v) not in excluded and not (scope == "exclude_bn_bias" and _is_bias(v))]
