"""Which weights a weight-space diagnostic looks at: all trainable ones, or only the scale-invariant ones, by layer.

Seed 002 (§3.1, §5.2) measures the angular update and effective learning rate of scale-invariant weights: those
"followed by a normalization layer", whose scale does not change the network's output. Here a layer's trainable
weights (kernel and bias together) count as scale-invariant when every path from its output reaches a
normalization layer through parameter-free, positively homogeneous single-input layers only (pooling, padding,
flatten/reshape, dropout, ReLU), since those commute with a positive rescaling. The rule is structural: it reads
the functional graph (a Sequential model's too), so a subclassed network has no scale-invariant weights by this rule.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import keras

from tfregimes.base import keras_private
from tfregimes.models.norm_layers import NORMALIZATION_LAYERS

# Parameter-free layers f with f(a·h) = a·f(h) for a > 0: a normalization after them still removes the scale.
POSITIVELY_HOMOGENEOUS = (
    keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
    keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout, keras.layers.SpatialDropout2D,
    keras.layers.ReLU,
)


def _functional_layers(model: keras.Model):
    """(layer, owning functional graph) for every layer, descending into nested functional and Sequential models."""
    graph = keras_private.functional_graph(model)
    for layer in getattr(graph, "layers", ()):
        yield layer, graph
        if isinstance(layer, keras.Model) and keras_private.functional_graph(layer) is not None:
            yield from _functional_layers(layer)


def _reaches_only_normalization(layer: keras.layers.Layer, model: keras.Model) -> bool:
    consumers = keras_private.graph_consumers(layer, model)
    if not consumers:
        return False  # A model output.
    for consumer in consumers:
        if isinstance(consumer, NORMALIZATION_LAYERS):
            continue
        if isinstance(consumer, POSITIVELY_HOMOGENEOUS) and _reaches_only_normalization(consumer, model):
            continue
        return False
    return True


def scale_invariant_variables(network: keras.Model) -> list[keras.Variable]:
    """The trainable variables of layers whose output feeds only normalization (see the module docstring)."""
    if keras_private.functional_graph(network) is None:
        return []
    selected = {id(v) for layer, owner in _functional_layers(network)
                if layer.trainable_variables and not isinstance(layer, keras.Model)
                and _reaches_only_normalization(layer, owner)
                for v in layer.trainable_variables}
    return [v for v in network.trainable_variables if id(v) in selected]


def select_variables(network: keras.Model, scale_invariant_only: bool) -> list[keras.Variable]:
    """All trainable variables of `network`, or only its scale-invariant ones; fails if that leaves none."""
    variables = scale_invariant_variables(network) if scale_invariant_only else list(network.trainable_variables)
    if not variables:
        what = "scale-invariant trainable weights (weights followed by normalization)" if scale_invariant_only \
            else "trainable weights"
        raise ValueError(f"network {network.name!r} has no {what}")
    return variables


def layer_name(variable: keras.Variable) -> str:
    """The owning layer's path, e.g. "conv1" for "conv1/kernel" (nested blocks keep their prefix)."""
    path = getattr(variable, "path", variable.name)
    return path.rsplit("/", 1)[0] if "/" in path else path


def group_by_layer(variables: Sequence[keras.Variable]) -> OrderedDict[str, list[int]]:
    """Layer path -> indices into `variables`, in order of first appearance."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for index, variable in enumerate(variables):
        groups.setdefault(layer_name(variable), []).append(index)
    return groups
