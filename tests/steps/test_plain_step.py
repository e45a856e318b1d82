"""The training step: coupled weight decay checked against a hand-computed SGD step on a linear softmax model."""

import keras
import numpy as np
import pytest
from helpers import ce_gradients, ce_loss

from tfregimes.models import decay_variables
from tfregimes.steps.plain import RegimeModel


def linear_model():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(4, kernel_initializer="glorot_uniform", bias_initializer="ones")
    return keras.Model(inputs, dense(inputs))


@pytest.mark.parametrize("scope", ["all", "exclude_bn_bias"])
def test_one_sgd_step_adds_lambda_w_to_the_gradients_of_decayed_weights(scope):
    keras.utils.set_random_seed(1)
    network = linear_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.integers(0, 4, size=8).astype(np.int32)
    w0, b0 = (v.numpy().astype(np.float64) for v in network.trainable_variables)
    lr, wd = 0.1, 0.01
    model = RegimeModel(network, weight_decay=wd, decay_variables=decay_variables(network, scope))
    model.compile(optimizer=keras.optimizers.SGD(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logs = model.train_on_batch(x, y, return_dict=True)

    gw, gb = ce_gradients(w0, b0, x.astype(np.float64), y)
    expected_w = w0 - lr * (gw + wd * w0)
    expected_b = b0 - lr * (gb + (wd * b0 if scope == "all" else 0.0))
    w1, b1 = (v.numpy() for v in network.trainable_variables)
    np.testing.assert_allclose(w1, expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, expected_b, rtol=1e-5, atol=1e-6)
    # The logged loss is the data loss alone, without the decay penalty.
    assert logs["loss"] == pytest.approx(ce_loss(w0, b0, x.astype(np.float64), y), rel=1e-5)


def test_penalty_is_half_lambda_squared_norm():
    network = linear_model()
    model = RegimeModel(network, weight_decay=0.2, decay_variables=network.trainable_variables)
    squared = sum(float(np.sum(v.numpy() ** 2)) for v in network.trainable_variables)
    assert float(model.weight_decay_penalty()) == pytest.approx(0.1 * squared, rel=1e-6)
    assert float(RegimeModel(network).weight_decay_penalty()) == 0.0


def test_global_clipnorm_scales_the_whole_step_to_the_clip():
    keras.utils.set_random_seed(2)
    network = linear_model()
    rng = np.random.default_rng(1)
    x = (10 * rng.normal(size=(8, 3))).astype(np.float32)
    y = rng.integers(0, 4, size=8).astype(np.int32)
    w0, b0 = (v.numpy().astype(np.float64) for v in network.trainable_variables)
    model = RegimeModel(network, weight_decay=0.01, decay_variables=network.trainable_variables)
    model.global_clipnorm = 0.5
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
    gw, gb = ce_gradients(w0, b0, x.astype(np.float64), y)
    gw, gb = gw + 0.01 * w0, gb + 0.01 * b0
    norm = np.sqrt(np.sum(gw ** 2) + np.sum(gb ** 2))
    assert norm > 0.5  # The clip is active.
    w1, b1 = (v.numpy() for v in network.trainable_variables)
    np.testing.assert_allclose(w1, w0 - 0.1 * gw * 0.5 / norm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b0 - 0.1 * gb * 0.5 / norm, rtol=1e-5, atol=1e-6)
