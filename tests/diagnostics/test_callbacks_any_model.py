"""The training diagnostics as plain Keras callbacks (issue 23, item 1): `model.fit` of a Sequential, a functional and
a subclassed model with `diagnostic_callbacks`, checked against the trainer's path (a `RegimeModel` around a network
with the same initial weights, data order and optimizer, with the trainer's `EpochLogs` before the diagnostics) and
against values computed here from the weights saved at the epoch boundaries."""

import math

import keras
import numpy as np
import pytest

from tfregimes.data import load_dataset
from tfregimes.diagnostics.adapters import diagnostic_callbacks
from tfregimes.diagnostics.dynamics.weight_groups import select_variables
from tfregimes.steps.plain import RegimeModel
from tfregimes.training.recording import EpochLogs

BATCH = 32
EXAMPLES = 128  # 4 steps an epoch
# The learning rate of each epoch's steps (0-based steps 0-3, 4-7, 8-11): the boundary after step 3 is the last step
# of epoch 1, so a callback reading the schedule's NEXT rate there would log 0.05 instead of 0.1.
EPOCH_RATES = (0.1, 0.05, 0.02)
KEYS = ("angular_update", "weight_norm", "effective_lr", "effective_lr_per_epoch", "tuning_factor", "momentum_scale",
        "margin_q1", "margin_median", "margin_q3", "margin_mean")


def digits():
    x, y = load_dataset("digits", train_subset=EXAMPLES, seed=0).arrays("train")
    return x, y


def conv_bn_layers():
    return [keras.layers.Conv2D(4, 3, use_bias=False, name="conv"), keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"), keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(10, name="logits")]


def sequential(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 1)), *conv_bn_layers()], name="plain_sequential")


def functional(seed=0):
    keras.utils.set_random_seed(seed)
    h = inputs = keras.Input((8, 8, 1))
    for layer in conv_bn_layers():
        h = layer(h)
    return keras.Model(inputs, h, name="plain_functional")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="plain_subclassed")
        self.stack = conv_bn_layers()

    def call(self, x, training=False):
        for layer in self.stack:
            x = layer(x, training=training)
        return x


def sgd():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([3, 7], list(EPOCH_RATES))
    return keras.optimizers.SGD(schedule, momentum=0.9)


def compile_(model, optimizer):
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def diagnostics(x, y, names="angular,elr,momentum,margins", **kwargs):
    return diagnostic_callbacks(names, num_train=len(x), batch_size=BATCH, train_examples=(x, y), probe_examples=64,
                                margin_samples=100, **kwargs)


def flat(variables):
    return np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in variables])


class WeightRecorder(keras.callbacks.Callback):
    """The trainable weights at the start and end of every epoch."""

    def __init__(self):
        super().__init__()
        self.starts, self.ends = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.starts.append(flat(self.model.trainable_variables))

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(flat(self.model.trainable_variables))


def fit(model, x, y, callbacks):
    return model.fit(x, y, batch_size=BATCH, epochs=len(EPOCH_RATES), shuffle=False, verbose=0,
                     callbacks=callbacks).history


def test_a_plain_sequential_fit_logs_what_the_trainers_path_logs_on_the_same_weights():
    x, y = digits()
    plain = compile_(sequential(), sgd())
    plain.build((None, 8, 8, 1))
    initial = plain.get_weights()
    recorder = WeightRecorder()
    plain_callbacks = diagnostics(x, y)
    history = fit(plain, x, y, [*plain_callbacks, recorder])

    network = sequential(seed=1)
    network.set_weights(initial)
    trainer = compile_(RegimeModel(network), sgd())  # As the trainer runs it: EpochLogs first, then the diagnostics.
    trainer_callbacks = diagnostics(x, y)
    trainer_history = fit(trainer, x, y, [EpochLogs(), *trainer_callbacks])

    baseline = compile_(sequential(seed=2), sgd())
    baseline.build((None, 8, 8, 1))
    baseline.set_weights(initial)
    fit(baseline, x, y, [])
    # The same trajectory three ways: the diagnostics (the probe's BN pass included) leave training as it was.
    for ours, theirs, alone in zip(plain.weights, network.weights, baseline.weights):
        np.testing.assert_array_equal(ours.numpy(), alone.numpy())
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)

    assert "learning_rate" not in history  # Plain fit: the rate comes from the optimizer's schedule.
    for key in KEYS:
        assert len(history[key]) == len(EPOCH_RATES), key
        np.testing.assert_allclose(history[key], trainer_history[key], rtol=1e-4, err_msg=key)
    plain_alignment, trainer_alignment = plain_callbacks[2].alignment, trainer_callbacks[2].alignment
    assert [r["epoch"] for r in plain_alignment] == [1, 2, 3]
    np.testing.assert_allclose([r["alignment"] for r in plain_alignment[:2]],
                               [r["alignment"] for r in trainer_alignment[:2]], rtol=1e-4)

    # Independently, from the saved weights: seed 002 eqs. 11, 9, 10 with each epoch's own rate.
    for epoch, rate in enumerate(EPOCH_RATES):
        start, end = recorder.starts[epoch], recorder.ends[epoch]
        cosine = start @ end / (np.linalg.norm(start) * np.linalg.norm(end))
        assert history["angular_update"][epoch] == pytest.approx(math.acos(cosine), rel=1e-4)
        squared_norm = end @ end
        assert history["weight_norm"][epoch] == pytest.approx(math.sqrt(squared_norm), rel=1e-5)
        assert history["effective_lr"][epoch] == pytest.approx(rate / squared_norm, rel=1e-5)
        assert history["effective_lr_per_epoch"][epoch] == pytest.approx(
            rate * EXAMPLES / (squared_norm * BATCH), rel=1e-5)
        assert history["tuning_factor"][epoch] == 0.0  # No weight decay: eq. 27's λ = 0.


def test_a_subclassed_model_with_adam_gets_every_diagnostic_but_momentum_which_stops_fit_in_one_line():
    x, y = digits()
    keras.utils.set_random_seed(0)
    model = compile_(Subclassed(), keras.optimizers.Adam(1e-3))
    recorder = WeightRecorder()
    # Not built before fit: the callbacks build it from the first training example, as Keras would in its first step.
    history = fit(model, x, y, [*diagnostics(x, y, "angular,elr,margins"), recorder])
    keras.utils.set_random_seed(0)
    alone = compile_(Subclassed(), keras.optimizers.Adam(1e-3))
    fit(alone, x, y, [])
    for ours, theirs in zip(model.weights, alone.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for key in set(KEYS) - {"tuning_factor", "momentum_scale"}:
        assert len(history[key]) == len(EPOCH_RATES) and np.all(np.isfinite(history[key])), key
    assert "tuning_factor" not in history  # Eq. 27 is SGD's.
    start, end = recorder.starts[-1], recorder.ends[-1]
    assert history["angular_update"][-1] == pytest.approx(
        math.acos(start @ end / (np.linalg.norm(start) * np.linalg.norm(end))), rel=1e-4)
    assert history["effective_lr"][-1] == pytest.approx(1e-3 / (end @ end), rel=1e-5)

    with pytest.raises(ValueError, match="momentum diagnostic needs keras SGD with momentum > 0") as error:
        fit(compile_(Subclassed(), keras.optimizers.Adam(1e-3)), x, y, diagnostics(x, y, "momentum"))
    assert "\n" not in str(error.value) and "Adam" in str(error.value)
    with pytest.raises(ValueError, match="'plain_subclassed' is not built: build it"):
        fit(compile_(Subclassed(), keras.optimizers.Adam(1e-3)), x, y,
            diagnostic_callbacks("angular", num_train=len(x), batch_size=BATCH))


def test_momentum_scale_of_a_subclassed_model_is_the_trainers_on_the_same_weights():
    x, y = digits()
    keras.utils.set_random_seed(0)
    plain = compile_(Subclassed(), sgd())
    plain(x[:1])
    initial = plain.get_weights()
    history = fit(plain, x, y, diagnostics(x, y, "momentum"))
    network = Subclassed()
    network(x[:1])
    network.set_weights(initial)
    trainer_history = fit(compile_(RegimeModel(network), sgd()), x, y, [EpochLogs(), *diagnostics(x, y, "momentum")])
    np.testing.assert_allclose(history["momentum_scale"], trainer_history["momentum_scale"], rtol=1e-4)


@pytest.mark.parametrize("build", [sequential, functional])
def test_scale_invariant_weights_are_found_in_sequential_and_functional_models(build):
    model = build()
    assert [v.path.rsplit("/", 2)[-2:] for v in select_variables(model, True)] == [["conv", "kernel"]]
    with pytest.raises(ValueError, match="no scale-invariant"):
        select_variables(Subclassed(), True)
