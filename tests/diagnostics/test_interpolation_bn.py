"""Interpolation and batch norm (issue 12, item 7): moving statistics recomputed at each point on training data
(the default), or interpolated with a count of the variances clipped at 0."""

import keras
import numpy as np
import pytest

from tfregimes.diagnostics.minimum.interpolation import interpolation_curve


def _bn_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Dense(3)])
    model(np.zeros((1, 6), np.float32))
    return model


@pytest.fixture(scope="module")
def models_and_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=100).astype(np.int32)
    first, second = _bn_model(1), _bn_model(2)
    bn = first.layers[1]
    bn.moving_mean.assign(np.full(5, 3.0, np.float32))  # Statistics far from the data's
    bn.moving_variance.assign(np.full(5, 4.0, np.float32))
    second.layers[1].moving_variance.assign(np.full(5, 0.5, np.float32))  # a = 2 extrapolates 4 → −3
    return first, second, {"train": (x, y)}


def test_recomputed_statistics_are_those_of_the_data_at_each_point(models_and_data):
    first, second, data = models_and_data
    x, y = data["train"]
    rows = interpolation_curve(first, second, data, np.array([0.0, 0.5]), batch_size=32,
                               bn_statistics="recompute")
    assert "bn_variances_clipped" not in rows[0]
    for row, alpha in zip(rows, (0.0, 0.5)):
        # Independent computation: the BN layer's inputs at θ(a) over all 100 examples; population mean and
        # (biased) variance; then the rest of the network in numpy.
        w = [(1 - alpha) * a + alpha * b for a, b in zip(first.get_weights(), second.get_weights())]
        kernel, bias, gamma, beta, _, _, kernel_2, bias_2 = w
        hidden = x @ kernel + bias
        normalized = (hidden - hidden.mean(0)) / np.sqrt(hidden.var(0) + first.layers[1].epsilon)
        logits = np.maximum(gamma * normalized + beta, 0) @ kernel_2 + bias_2
        log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - logits.max(1, keepdims=True)
        assert row["train_loss"] == pytest.approx(-log_probs[np.arange(100), y].mean(), rel=1e-4)
        assert row["train_accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
    assert first.layers[1].momentum == 0.99  # Restored after the recomputation.


def test_interpolated_statistics_count_the_variances_clipped(models_and_data):
    first, second, data = models_and_data
    rows = interpolation_curve(first, second, data, np.array([0.0, 1.0, 2.0]), batch_size=32,
                               bn_statistics="interpolate")
    assert [row["bn_variances_clipped"] for row in rows] == [0, 0, 5]


def test_unknown_bn_statistics_are_refused(models_and_data):
    first, second, data = models_and_data
    with pytest.raises(ValueError, match="bn_statistics must be one of recompute, interpolate"):
        interpolation_curve(first, second, data, np.array([0.0]), bn_statistics="fixed")
