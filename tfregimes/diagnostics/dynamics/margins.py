"""First-order margin distributions (seed 000, appendix A.1, after Jiang et al. 2018).

For an example (x, y) with logits f and c the highest-scoring class other than y, the first-order approximation
(seed 000 eq. 12) of the distance from x to the boundary f_y = f_c (eq. 11) is

    d = (f_y(x) − f_c(x)) / ‖∇_h f_y(x) − ∇_h f_c(x)‖₂,

negative when x is misclassified. h is the input (input-space margin) or a hidden layer's activations (the
gradient is then taken w.r.t. that layer's output; Jiang et al. 2018 §3). Seed 000's text says "gradients with
respect to the model parameters"; the distance in eq. 11 is one in the space of x, as in Jiang et al., so the
gradient here is w.r.t. the input (or the chosen layer). The normalized margin divides d by the square root of
the total variation of h over the measured examples, ν(h) = tr Cov(h) = (1/n)·Σ_i ‖h_i − h̄‖² (Jiang et al.),
which makes margins comparable across layers and networks. Following both papers, summaries keep the margins
between the first and third quartiles ("mean" is their mean); the quartiles themselves are of all margins.

All examples of a batch go through one forward and one backward pass: in inference mode (BN moving statistics,
no dropout) example i's logits depend on x_i only, so the gradient of Σ_i (f_{y_i} − f_{c_i})(x_i) w.r.t. the
batch holds every example's own gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base import keras_private

INPUT_SPACE = "input"
NORMALIZATIONS = ("total_variation", "none")


def feature_model(network: keras.Model, layer_names: Sequence[str] = ()) -> keras.Model:
    """`network`, or a functional model returning [outputs of `layer_names`..., logits] for hidden-layer margins."""
    if not layer_names:
        return network
    if keras_private.functional_graph(network) is None:
        raise ValueError(f"hidden-layer margins need a functional or built Sequential network; {network.name!r} "
                         "is subclassed")
    known = [layer.name for layer in network.layers]
    missing = [name for name in layer_names if name not in known]
    if missing:
        raise ValueError(f"network {network.name!r} has no layer {', '.join(map(repr, missing))}; its layers: "
                         f"{', '.join(known)}")
    outputs = [network.get_layer(name).output for name in layer_names]
    return keras.Model(network.inputs, [*outputs, *network.outputs], name=f"{network.name}_margin_features")


def make_margin_batch_fn(network: keras.Model, layer_names: Sequence[str] = ()):
    """A compiled `(x, y) -> (margins, sums, squared_sums)`, each a list over spaces [input, *layer_names]:
    the unnormalized first-order margins d (one per example), Σ_i h_i and Σ_i ‖h_i‖² (for the total variation)."""
    model = feature_model(network, layer_names)
    with_hidden = bool(layer_names)

    @tf.function(reduce_retracing=True)
    def margins(x, y):
        x = tf.convert_to_tensor(x)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = model(x, training=False)
            hidden, logits = (list(outputs[:-1]), outputs[-1]) if with_hidden else ([], outputs)
            logits = tf.cast(logits, tf.float32)
            true_logit = tf.gather(logits, y, batch_dims=1)
            others = tf.where(tf.one_hot(y, tf.shape(logits)[1]) > 0, tf.cast(-np.inf, logits.dtype), logits)
            runner_up = tf.argmax(others, axis=1, output_type=tf.int32)  # c: highest class other than y
            difference = true_logit - tf.gather(logits, runner_up, batch_dims=1)
            total = tf.reduce_sum(difference)
        spaces = [x, *hidden]
        gradients = tape.gradient(total, spaces)
        margins, sums, squared_sums = [], [], []
        for h, g in zip(spaces, gradients):
            flat_g = tf.reshape(tf.cast(g, tf.float32), [tf.shape(g)[0], -1])
            flat_h = tf.reshape(tf.cast(h, tf.float32), [tf.shape(h)[0], -1])
            margins.append(difference / tf.norm(flat_g, axis=1))
            sums.append(tf.reduce_sum(flat_h, axis=0))
            squared_sums.append(tf.reduce_sum(tf.square(flat_h)))
        return margins, sums, squared_sums

    return margins


def total_variation(count: int, sums: np.ndarray, squared_sum: float) -> float:
    """ν(h) = (1/n)·Σ_i ‖h_i − h̄‖² = (1/n)·Σ_i ‖h_i‖² − ‖h̄‖², from the sums (float64)."""
    mean = np.asarray(sums, np.float64) / count
    return max(float(squared_sum) / count - float(mean @ mean), 0.0)


def first_order_margins(network: keras.Model, x, y, *, layer_names: Sequence[str] = (),
                        normalization: str = "total_variation", batch_size: int = 256,
                        batch_fn=None) -> dict[str, np.ndarray]:
    """{space: per-example margins (float64)} for spaces "input" and each of `layer_names`.

    `normalization="total_variation"` divides each space's margins by √ν(h) over these examples (seed 000 A.1);
    "none" gives the raw first-order distance d. Examples with a zero gradient difference get ±inf (or NaN when
    the logits tie). `batch_fn` reuses a `make_margin_batch_fn` (a callback builds it once).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown margin normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need as many labels as (at least one) examples; got {len(x)} and {len(y)}")
    batch_fn = batch_fn or make_margin_batch_fn(network, layer_names)
    spaces = [INPUT_SPACE, *layer_names]
    margins = {space: [] for space in spaces}
    sums = [0.0] * len(spaces)
    squared_sums = [0.0] * len(spaces)
    for start in range(0, len(x), batch_size):
        batch_margins, batch_sums, batch_squared = batch_fn(x[start:start + batch_size], y[start:start + batch_size])
        for i, space in enumerate(spaces):
            margins[space].append(batch_margins[i].numpy().astype(np.float64))
            sums[i] = sums[i] + batch_sums[i].numpy().astype(np.float64)
            squared_sums[i] += float(batch_squared[i].numpy())
    result = {}
    for i, space in enumerate(spaces):
        values = np.concatenate(margins[space])
        if normalization == "total_variation":
            values = values / np.sqrt(total_variation(len(x), sums[i], squared_sums[i]))
        result[space] = values
    return result


def margin_summary(margins: np.ndarray) -> dict[str, float]:
    """q1, median, q3 of the finite margins; mean of those within [q1, q3] (the inter-quartile margins seed 000
    and Jiang et al. keep); count of finite margins; fraction negative (misclassified)."""
    values = np.asarray(margins, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"q1": float("nan"), "median": float("nan"), "q3": float("nan"), "mean": float("nan"),
                "count": 0, "negative_fraction": float("nan")}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    kept = values[(values >= q1) & (values <= q3)]
    return {"q1": float(q1), "median": float(median), "q3": float(q3), "mean": float(kept.mean()),
            "count": int(values.size), "negative_fraction": float(np.mean(values < 0))}
