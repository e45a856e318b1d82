"""Training-time diagnostics against closed forms: angular update (seed 002 eq. 11), effective LR and tuning factor
(eqs. 9, 10, 27), momentum scale and alignment on a heavy-ball quadratic (seed 001 §3.1), first-order margins of a
linear softmax model (seed 000 A.1), and the callbacks in short fits."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfregimes.base.background import BackgroundFiles
from tfregimes.base.registry import UnknownNameError
from tfregimes.base.run_dir import RunDirectory
from tfregimes.diagnostics.adapters import TRAINING_DIAGNOSTICS, diagnostic_callbacks
from tfregimes.diagnostics.adapters.callbacks import (
    AngularUpdate,
    DiagnosticsOutput,
    EffectiveLearningRate,
    MomentumDiagnostic,
)
from tfregimes.diagnostics.adapters.training_diagnostics import default_probe_every, default_probe_examples
from tfregimes.diagnostics.dynamics import angular, learning_rate, margins, momentum
from tfregimes.diagnostics.dynamics.weight_groups import scale_invariant_variables
from tfregimes.steps.plain import RegimeModel
from tfregimes.training.recording import EpochLogs, EpochRecorder


def dense_network(inputs=2, units=2, name="net"):
    x = keras.Input((inputs,))
    return keras.Model(x, keras.layers.Dense(units, name="dense")(x), name=name)


def compiled(network, *, lr=0.1, momentum_=0.0, weight_decay=0.0):
    model = RegimeModel(network, weight_decay=weight_decay, decay_variables=network.trainable_variables)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=momentum_),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model(tf.zeros((1, *network.input_shape[1:])))
    model.optimizer.build(model.trainable_variables)
    return model


# --- angular update (seed 002 eq. 11) -------------------------------------------------------------------------

@pytest.mark.parametrize("theta", [1e-6, 1e-3, 0.3, math.pi / 2, 3.0])
def test_angular_update_is_exact_for_small_and_large_angles(theta):
    x = np.array([2.0, 0.0, 0.0])
    y = 0.5 * np.array([math.cos(theta), math.sin(theta), 0.0])
    assert angular.angular_update([x], [y]) == pytest.approx(theta, rel=1e-9)


def test_angular_update_of_a_known_weight_sequence_whole_and_per_layer(tmp_path):
    network = dense_network()
    model = compiled(network)
    callback = AngularUpdate(output=DiagnosticsOutput(output_dir=tmp_path))
    callback.set_model(model)
    callback.set_params({"epochs": 2})
    kernel, bias = network.get_layer("dense").trainable_variables
    sequence = [(np.eye(2), np.zeros(2)),  # start of epoch 1 ...
                (np.array([[1.0, 1.0], [0.0, 1.0]]), np.zeros(2)),  # ... its end: only w[0,1] moves
                (np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([1.0, 1.0]))]  # end of epoch 2: the bias moves
    kernel.assign(sequence[0][0]), bias.assign(sequence[0][1])
    callback.on_train_begin()
    logged = []
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        kernel.assign(sequence[epoch + 1][0]), bias.assign(sequence[epoch + 1][1])
        logs = {}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["angular_update"])
    # Whole vector: (1,0,0,1,0,0) -> (1,1,0,1,0,0): cos = 2/(√2·√3); then -> (1,1,0,1,1,1): cos = 3/(√3·√5).
    assert logged[0] == pytest.approx(math.acos(2 / math.sqrt(6)), rel=1e-6)  # float32 weights
    assert logged[1] == pytest.approx(math.acos(3 / math.sqrt(15)), rel=1e-6)
    callback.on_train_end()  # The per-layer lines are written in the background until then.
    layers = [json.loads(line) for line in (tmp_path / AngularUpdate.LAYERS_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in layers] == [1, 2]
    assert layers[0]["layers"] == {"dense": pytest.approx(logged[0])}


@pytest.mark.parametrize("every", [1, 2])
def test_angular_update_compares_the_start_and_end_of_each_measured_epoch(every):
    network = dense_network()
    callback = AngularUpdate(every=every)
    callback.set_model(compiled(network))
    callback.set_params({"epochs": 4})
    variables = network.trainable_variables
    ends = [[np.random.default_rng(epoch).normal(size=v.shape) for v in variables] for epoch in range(5)]
    for v, value in zip(variables, ends[0]):
        v.assign(value)
    callback.on_train_begin()
    logged = {}
    for epoch in range(4):
        callback.on_epoch_begin(epoch)
        for v, value in zip(variables, ends[epoch + 1]):
            v.assign(value)
        logs = {}
        callback.on_epoch_end(epoch, logs)
        if "angular_update" in logs:
            logged[epoch + 1] = logs["angular_update"]
    # every=1 copies each epoch's end as the next one's start in the same device call; every=2 copies at the start.
    assert list(logged) == list(range(every, 5, every))
    for epoch, value in logged.items():
        assert value == pytest.approx(angular.angular_update(ends[epoch - 1], ends[epoch]), rel=1e-5)
    built = callback._angles
    callback.on_train_begin()  # The next fit (phase) of the same model reuses the compiled functions.
    assert callback._angles is built


def test_scale_invariant_weights_are_the_convs_followed_by_normalization():
    from tfregimes.models import ModelOptions, build_model
    network = build_model("cnn_small", input_shape=(8, 8, 1), num_classes=10, options=ModelOptions())
    # conv -> BN for conv1..3; BN gamma/beta feed ReLU -> conv (not a normalization); the logits feed nothing.
    assert [v.path for v in scale_invariant_variables(network)] == [
        "conv1/kernel", "conv2/kernel", "conv3/kernel"]


# --- effective learning rate and tuning factor (seed 002 eqs. 9, 10, 27) --------------------------------------

def test_tuning_factor_of_seed_002_yellow_cells():
    # Seed 002 §5: N = 50k, B = 128, η = 0.1, μ = 0.9, λ = 2e-4 gives the tuning factor 10/128 of its tables.
    assert learning_rate.tuning_factor(num_train=50_000, learning_rate=0.1, weight_decay=2e-4, batch_size=128,
                                       momentum=0.9) == pytest.approx(10 / 128, rel=1e-12)
    assert learning_rate.tuning_factor(num_train=1000, learning_rate=0.5, weight_decay=1e-3, batch_size=50) \
        == pytest.approx(0.01)


def test_equilibrium_angular_update_of_eq_27():
    # cos Δθ = 1 − T: T = 10/128 (seed 002's yellow cells) gives arccos(118/128); T = 1 a right angle.
    assert learning_rate.equilibrium_angular_update(10 / 128) == pytest.approx(math.acos(118 / 128), rel=1e-12)
    assert learning_rate.equilibrium_angular_update(1.0) == pytest.approx(math.pi / 2, rel=1e-12)
    assert learning_rate.equilibrium_angular_update(0.0) == 0.0
    assert learning_rate.equilibrium_angular_update(1e-6) == pytest.approx(math.sqrt(2e-6), rel=1e-6)
    with pytest.raises(ValueError, match="tuning factor"):
        learning_rate.equilibrium_angular_update(2.5)


def effective_lr_logs(model) -> dict:
    """The logs EffectiveLearningRate adds at the end of one epoch of 600 examples in batches of 20."""
    callback = EffectiveLearningRate(num_train=600, batch_size=20)
    callback.set_model(model)
    callback.set_params({"epochs": 1})
    callback.on_train_begin()
    logs = {}
    callback.on_epoch_end(0, logs)
    return logs


def test_effective_learning_rate_callback_logs_eqs_9_10_27():
    network = dense_network()
    model = compiled(network, lr=0.3, momentum_=0.5, weight_decay=1e-3)
    kernel, bias = network.trainable_variables
    kernel.assign([[3.0, 0.0], [0.0, 4.0]]), bias.assign([0.0, 0.0])  # ‖x‖² = 25
    logs = effective_lr_logs(model)
    assert logs["weight_norm"] == pytest.approx(5.0)
    assert logs["effective_lr"] == pytest.approx(0.3 / 25)
    assert logs["effective_lr_per_epoch"] == pytest.approx(0.3 * 600 / (25 * 20))
    assert logs["tuning_factor"] == pytest.approx(600 * 0.3 * 1e-3 / (20 * 0.5))


@pytest.mark.parametrize("loss_scaled,decoupled", [(True, 0.0), (False, 2e-3), (True, 2e-3)])
def test_tuning_factor_is_logged_under_loss_scaling_and_counts_decoupled_decay(loss_scaled, decoupled):
    network = dense_network()
    model = RegimeModel(network, weight_decay=1e-3, decay_variables=network.trainable_variables)
    optimizer = keras.optimizers.SGD(0.3, momentum=0.5, weight_decay=decoupled or None)
    if loss_scaled:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model(tf.zeros((1, 2)))
    model.optimizer.build(model.trainable_variables)
    logs = effective_lr_logs(model)
    # Coupled λ works through the momentum buffer (÷(1 − μ)); decoupled λ_d shrinks by ηλ_d per step directly.
    assert logs["tuning_factor"] == pytest.approx(600 * 0.3 * (1e-3 / 0.5 + decoupled) / 20)


# --- momentum scale and alignment (seed 001 eqs. 3, 4, §3.1) ----------------------------------------------------

@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_heavy_ball_on_a_quadratic_scale_tends_to_1_over_1_minus_mu_and_alignment_to_1(mu):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    hessian = (q * np.logspace(-5, -2.5, 20)) @ q.T  # f(w) = ½ wᵀAw; η·λ_max ≪ (1 − μ)²: overdamped
    a = tf.constant(hessian, tf.float32)
    w = keras.Variable(rng.normal(size=20).astype(np.float32))
    optimizer = keras.optimizers.SGD(1.0, momentum=mu)  # Keras' v ← μv − η∇f, w ← w + v
    optimizer.build([w])
    step = tf.function(lambda: optimizer.apply([tf.linalg.matvec(a, w)], [w]))
    snapshots = {}
    for t in range(1, 1001):
        step()
        if t in (100, 800):
            snapshots[t] = (w.numpy().copy(), optimizer.momentums[0].numpy().copy())
    final = w.numpy()
    scale, alignment = {}, {}
    for t, (weights, velocity) in snapshots.items():
        scale[t] = momentum.momentum_scale([velocity], [hessian @ weights], 1.0)
        alignment[t] = momentum.momentum_alignment([velocity], [weights], [final])
    assert scale[800] == pytest.approx(1 / (1 - mu), rel=0.02)
    assert abs(scale[800] - 1 / (1 - mu)) < abs(scale[100] - 1 / (1 - mu))
    assert alignment[800] > 0.98 and alignment[800] > alignment[100]


# --- first-order margins (seed 000 A.1) ---------------------------------------------------------------------------

def _linear_softmax(num_classes, dims, seed):
    keras.utils.set_random_seed(seed)
    network = dense_network(dims, num_classes)
    rng = np.random.default_rng(seed)
    network.get_layer("dense").bias.assign(rng.normal(size=num_classes).astype(np.float32))
    return network


def test_binary_linear_softmax_margin_is_the_signed_distance_to_the_decision_boundary():
    network = _linear_softmax(2, 5, seed=1)
    w, b = (v.numpy().astype(np.float64) for v in network.get_layer("dense").trainable_variables)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 2, size=64)
    result = margins.first_order_margins(network, x, y, normalization="none", batch_size=24)
    # The decision boundary is the hyperplane a·x + c = 0, a = w₁ − w₀: distance |a·x + c|/‖a‖, signed + if right.
    a, c = w[:, 1] - w[:, 0], b[1] - b[0]
    score = x.astype(np.float64) @ a + c
    correct = (score > 0) == (y == 1)
    expected = np.where(correct, 1.0, -1.0) * np.abs(score) / np.linalg.norm(a)
    np.testing.assert_allclose(result["input"], expected, rtol=1e-5)
    assert (result["input"] < 0).any() and (result["input"] > 0).any()


def test_multiclass_linear_margin_is_the_distance_to_the_boundary_with_the_runner_up():
    network = _linear_softmax(4, 3, seed=3)
    w, b = (v.numpy().astype(np.float64) for v in network.get_layer("dense").trainable_variables)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    y = rng.integers(0, 4, size=40)
    d = margins.first_order_margins(network, x.astype(np.float32), y, normalization="none")["input"]
    logits = x @ w + b
    for i in range(len(x)):
        others = [j for j in range(4) if j != y[i]]
        c = others[int(np.argmax(logits[i, others]))]
        normal = w[:, y[i]] - w[:, c]
        # The nearest point with f_y = f_c (seed 000 eq. 11) is x − d·n/‖n‖; it lies on that boundary.
        on_boundary = x[i] - d[i] * normal / np.linalg.norm(normal)
        boundary_logits = on_boundary @ w + b
        assert boundary_logits[y[i]] == pytest.approx(boundary_logits[c], abs=1e-5)
        assert np.sign(d[i]) == (1 if np.argmax(logits[i]) == y[i] else -1)


def test_hidden_layer_margin_and_total_variation_normalization():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, name="hidden")(inputs)  # linear: the margin in h-space is exact too
    network = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
    v, c = (t.numpy().astype(np.float64) for t in network.get_layer("out").trainable_variables)
    u, e = (t.numpy().astype(np.float64) for t in network.get_layer("hidden").trainable_variables)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=30)
    raw = margins.first_order_margins(network, x, y, layer_names=["hidden"], normalization="none")
    normalized = margins.first_order_margins(network, x, y, layer_names=["hidden"])
    h = x.astype(np.float64) @ u + e
    logits = h @ v + c
    masked = np.where(np.eye(3)[y] > 0, -np.inf, logits)
    runner_up = masked.argmax(axis=1)
    rows = np.arange(30)
    expected = (logits[rows, y] - logits[rows, runner_up]) / np.linalg.norm((v[:, y] - v[:, runner_up]).T, axis=1)
    np.testing.assert_allclose(raw["hidden"], expected, rtol=1e-5)
    for space, activations in (("input", x.astype(np.float64)), ("hidden", h)):
        total_variation = activations.var(axis=0).sum()  # tr Cov over the examples (Jiang et al. 2018)
        np.testing.assert_allclose(normalized[space], raw[space] / np.sqrt(total_variation), rtol=1e-5)


def test_vectorized_margins_equal_per_example_gradients_on_a_cnn_with_batch_norm():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    network = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(h)))
    network.get_layer("bn").moving_mean.assign(np.full(4, 0.1, np.float32))  # inference mode must use these
    rng = np.random.default_rng(8)
    x = rng.normal(size=(9, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 5, size=9)
    batched = margins.first_order_margins(network, x, y, normalization="none", batch_size=4)["input"]
    for i in range(len(x)):
        xi = tf.constant(x[i:i + 1])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xi)
            logits = network(xi, training=False)[0]
            order = [j for j in np.argsort(-logits.numpy()) if j != y[i]]
            fy, fc = logits[int(y[i])], logits[int(order[0])]
        gradient = tape.gradient(fy, xi) - tape.gradient(fc, xi)
        assert batched[i] == pytest.approx(float(fy - fc) / float(tf.norm(gradient)), rel=1e-4)


def test_margin_summary_keeps_the_inter_quartile_margins():
    summary = margins.margin_summary(np.array([8, 1, 7, 2, 6, 3, 5, 4, np.nan], dtype=float))
    # numpy's linear percentiles of 1..8: q1 = 2.75, median = 4.5, q3 = 6.25; kept 3, 4, 5, 6.
    assert summary == {"q1": 2.75, "median": 4.5, "q3": 6.25, "mean": 4.5, "count": 8, "negative_fraction": 0.0}


# --- the callbacks in short fits ------------------------------------------------------------------------------------

def _bn_dropout_model(seed=0, momentum_=0.9):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.Dropout(0.3, name="dropout")(keras.layers.GlobalAveragePooling2D(name="pool")(h))
    network = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h), name="tiny")
    return compiled(network, lr=0.05, momentum_=momentum_, weight_decay=1e-3)


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, size=n).astype(np.int32)


def test_callbacks_add_their_keys_and_do_not_change_training(tmp_path):
    x, y = _data()
    baseline = _bn_dropout_model()
    baseline.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)

    model = _bn_dropout_model()
    diagnostics = diagnostic_callbacks("angular,elr,momentum,margins", every=1, num_train=len(x), batch_size=32,
                                       train_examples=tf.data.Dataset.from_tensor_slices((x, y)).batch(20),
                                       output_dir=tmp_path / "diagnostics", tensorboard_dir=tmp_path / "tb",
                                       probe_examples=64, margin_samples=50, margin_layers=["relu"],
                                       save_margins=tmp_path / "margins.npy")
    run_dir = RunDirectory(tmp_path / "run")
    waited = []

    def wait_for_files():  # as the trainer does: the diagnostics' files are complete before progress.json
        for diagnostic in diagnostics:
            diagnostic.wait_for_files()
        progress = run_dir.read_progress()
        waited.append(progress["epochs_done"] if progress else 0)
    callbacks = [EpochLogs(), *diagnostics, EpochRecorder(run_dir, [], before_progress=[wait_for_files])]
    history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=callbacks).history
    expected = {"angular_update", "weight_norm", "effective_lr", "effective_lr_per_epoch", "tuning_factor",
                "momentum_scale", "margin_q1", "margin_median", "margin_q3", "margin_mean", "margin_relu_q1",
                "margin_relu_median", "margin_relu_q3", "margin_relu_mean"}
    assert expected <= set(history)
    assert all(len(history[key]) == 2 and np.all(np.isfinite(history[key])) for key in expected)
    assert expected <= set(run_dir.read_history()[0])  # history.csv has them
    # The probe restores BN statistics and dropout seeds, so training is bit-for-bit the same.
    for with_diagnostics, without in zip(model.network.weights, baseline.network.weights):
        np.testing.assert_array_equal(with_diagnostics.numpy(), without.numpy())
    assert history["loss"] == baseline.history.history["loss"]
    assert np.load(tmp_path / "margins.npy").shape == (50,)
    assert np.load(tmp_path / "margins_relu.npy").shape == (50,)
    alignment = json.loads((tmp_path / "diagnostics" / "momentum_alignment.json").read_text())
    assert [r["epoch"] for r in alignment] == [1, 2] and alignment[1]["alignment"] is None  # x_T = x*
    event_file, = (tmp_path / "tb").glob("events.out.tfevents.*")
    scalars = {}
    for event in tf.compat.v1.train.summary_iterator(str(event_file)):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "scalars":
                scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    layers = [json.loads(line) for line in (tmp_path / "diagnostics" / "angular_update_layers.jsonl").open()]
    for record in layers:  # TensorBoard holds the per-layer angles of the JSON lines, as scalars
        for layer, angle in record["layers"].items():
            assert scalars[(f"angular_update/{layer}", record["epoch"] - 1)] == pytest.approx(angle, rel=1e-6)
    assert waited == [0, 1]  # called at each epoch's end, before progress.json names that epoch
    assert len(list((tmp_path / "diagnostics" / "momentum_snapshots").glob("epoch-*.npz"))) == 2


def test_background_files_run_in_order_and_wait_raises_their_errors():
    background, seen = BackgroundFiles(), []
    for index in range(5):
        background.submit(seen.append, index)
    background.wait()
    assert seen == [0, 1, 2, 3, 4]
    background.submit(lambda: 1 / 0)
    background.submit(seen.append, 5)
    with pytest.raises(ZeroDivisionError):
        background.wait()
    assert seen[-1] == 5


def test_momentum_scale_and_alignment_match_an_independent_computation():
    x, y = _data(n=80, seed=1)
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))  # no BN or dropout: the chunked probe gradient equals the full-batch one
    network = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    model = compiled(network, lr=0.05, momentum_=0.9, weight_decay=1e-2)
    callback, = diagnostic_callbacks(["momentum"], every=1, num_train=80, batch_size=32, train_examples=(x, y),
                                     probe_examples=80)  # chunks of 32, 32, 16
    recorded = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: recorded.append(
        (momentum.flatten(model.trainable_variables), momentum.flatten(model.optimizer.momentums))))
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        callbacks=[callback, record]).history
    _, _, gradients = model.compute_gradients(tf.constant(x), tf.constant(y))
    expected_scale = np.linalg.norm(recorded[-1][1]) / (0.05 * np.linalg.norm(momentum.flatten(gradients)))
    assert history["momentum_scale"][-1] == pytest.approx(expected_scale, rel=1e-4)
    final = recorded[-1][0].astype(np.float64)
    for (weights, velocity), result in zip(recorded[:2], callback.alignment[:2]):
        to_final = final - weights
        expected = velocity @ to_final / (np.linalg.norm(velocity) * np.linalg.norm(to_final))
        assert result["alignment"] == pytest.approx(expected, rel=1e-5)


def test_default_probe_is_1_percent_of_the_examples_between_measurements_within_one_batch_and_1024():
    assert default_probe_examples(50_000, 128, every=1) == 500
    assert default_probe_examples(150_000, 128, every=1) == 1024
    assert default_probe_examples(1437, 64, every=1) == 64
    assert default_probe_examples(1437, 64, every=10) == 144


def test_the_probe_is_measured_as_often_as_its_1_percent_budget_allows():
    assert default_probe_every(500, 50_000, every=1) == 1
    assert default_probe_every(64, 1437, every=1) == 5  # digits: 64 examples ≤ 1 % of 5 epochs of 1437 (71.9)
    assert default_probe_every(144, 1437, every=10) == 10
    assert default_probe_every(64, 1437, every=2) == 6  # a multiple of `every`
    callback, = diagnostic_callbacks("momentum", every=1, num_train=1437, batch_size=64,
                                     train_examples=_data(n=64))
    assert callback.probe_every == 5
    callback, = diagnostic_callbacks("momentum", every=1, num_train=1437, batch_size=64,
                                     train_examples=_data(n=64), probe_examples=16)  # chosen: every epoch
    assert callback.probe_every == 1


def test_momentum_scale_every_probe_every_epochs_and_snapshots_every_epoch():
    x, y = _data(n=64)
    model = _bn_dropout_model()
    callback = MomentumDiagnostic(probe_examples=(x[:32], y[:32]), chunk_size=32, probe_every=2)
    history = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0, callbacks=[callback]).history
    scales = history.get("momentum_scale")
    # Keras lists a key under the epochs that logged it: epoch 2 (probe_every) and 3 (the last).
    assert scales is not None and len(scales) == 2 and np.all(np.isfinite(scales))
    assert [record["epoch"] for record in callback.alignment] == [1, 2, 3]


def test_diagnostic_names_are_checked():
    assert TRAINING_DIAGNOSTICS.names() == ["angular", "elr", "margins", "momentum"]
    assert diagnostic_callbacks("", num_train=10, batch_size=2) == []
    assert len(diagnostic_callbacks("angular, elr,angular", num_train=10, batch_size=2)) == 2
    with pytest.raises(UnknownNameError, match="valid names: angular, elr, margins, momentum"):
        diagnostic_callbacks("angular,sharpness", num_train=10, batch_size=2)
    with pytest.raises(ValueError, match="needs training examples"):
        diagnostic_callbacks("margins", num_train=10, batch_size=2)
    with pytest.raises(ValueError, match="normalization"):
        diagnostic_callbacks("margins", num_train=10, batch_size=2, train_examples=_data(),
                             margin_normalization="l2")
