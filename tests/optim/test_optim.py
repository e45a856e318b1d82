"""Schedules and optimizers against hand-computed values; LARS against a NumPy reference."""

import math
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_script

from tfregimes.base.registry import UnknownNameError
from tfregimes.optim import (
    LARS,
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    epochs_to_steps,
    linear_scaled_learning_rate,
)


def lr_at(schedule, step):
    return float(schedule(tf.constant(step, tf.int64)))


# --- schedules ---------------------------------------------------------------------------------

def test_epochs_to_steps_rounds_fractional_epochs():
    assert epochs_to_steps(150, 391) == 58650
    assert epochs_to_steps(2.5, 10) == 25
    assert epochs_to_steps(0.3, 5) == 2  # 1.5 steps rounds to the even neighbour, 2
    with pytest.raises(ValueError):
        epochs_to_steps(-1, 10)


def test_linear_scaling_rule():
    assert linear_scaled_learning_rate(0.1, 8192, 256) == pytest.approx(3.2)
    assert linear_scaled_learning_rate(0.1, None, None) == 0.1
    with pytest.raises(ValueError, match="both"):
        linear_scaled_learning_rate(0.1, 8192, None)


COS_QUARTER = 0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 4))

SCHEDULE_CASES = {
    "constant": (dict(name="constant", base_lr=0.1, steps_per_epoch=10, total_epochs=3),
                 {0: 0.1, 29: 0.1, 1000: 0.1}),
    # Seed 002's 300-epoch setting: ×0.1 at epochs 150 and 225, 10 steps per epoch.
    "step_300_epochs": (dict(name="step", base_lr=0.1, steps_per_epoch=10, total_epochs=300,
                             boundaries=(150, 225), decay=0.1),
                        {0: 0.1, 1499: 0.1, 1500: 0.01, 2249: 0.01, 2250: 0.001, 2999: 0.001}),
    "step_fractional_boundary": (dict(name="step", base_lr=1.0, steps_per_epoch=4,
                                      total_epochs=3, boundaries=(1.5,), decay=0.5),
                                 {5: 1.0, 6: 0.5, 11: 0.5}),
    "cosine": (dict(name="cosine", base_lr=0.1, steps_per_epoch=10, total_epochs=10,
                    min_lr=0.001),
               {0: 0.1, 25: COS_QUARTER, 50: 0.0505, 100: 0.001, 150: 0.001}),
    "poly_power_2": (dict(name="poly", base_lr=0.1, steps_per_epoch=10, total_epochs=10,
                          power=2.0),
                     {0: 0.1, 50: 0.025, 90: 0.001, 100: 0.0}),
    # Goyal et al.: lr 0.1 per 256 images, batch 1024 → 0.4; warm-up over 5 epochs from the
    # unscaled 0.1, then ×0.1 at epochs 30, 60, 80 of 90.
    "goyal_warmup_step": (dict(name="step", base_lr=0.1, steps_per_epoch=10, total_epochs=90,
                               boundaries=(30, 60, 80), warmup_epochs=5, batch_size=1024,
                               reference_batch_size=256),
                          {0: 0.1, 10: 0.16, 49: 0.394, 50: 0.4, 299: 0.4, 300: 0.04,
                           600: 0.004, 800: 0.0004}),
    # Without batch scaling the warm-up starts from 0; cosine decays over the 10 epochs after it.
    "warmup_cosine": (dict(name="cosine", base_lr=0.2, steps_per_epoch=5, total_epochs=12,
                           warmup_epochs=2),
                      {0: 0.0, 5: 0.1, 10: 0.2, 35: 0.1, 60: 0.0}),
}


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_schedule_values(case):
    kwargs, expected = SCHEDULE_CASES[case]
    schedule = build_schedule(**kwargs)
    for step, value in expected.items():
        assert lr_at(schedule, step) == pytest.approx(value, rel=1e-5, abs=1e-7), step


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_schedule_serialization_round_trip(case):
    kwargs, expected = SCHEDULE_CASES[case]
    schedule = build_schedule(**kwargs)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    for step in expected:
        assert lr_at(restored, step) == lr_at(schedule, step)


def test_peak_learning_rate_is_the_scaled_rate():
    kwargs, _ = SCHEDULE_CASES["goyal_warmup_step"]
    assert build_schedule(**kwargs).peak_learning_rate == pytest.approx(0.4)
    kwargs, _ = SCHEDULE_CASES["cosine"]
    assert build_schedule(**kwargs).peak_learning_rate == pytest.approx(0.1)


def test_schedule_follows_optimizer_iterations():
    """Restoring `iterations` (as a checkpoint does) resumes the schedule."""
    kwargs, _ = SCHEDULE_CASES["step_300_epochs"]
    optimizer = build_optimizer("sgd", learning_rate=build_schedule(**kwargs), momentum=0.9)
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    optimizer.iterations.assign(1500)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="cosine", boundaries=(5,)), "does not use boundaries"),
    (dict(name="step", boundaries=(5,), power=2.0), "does not use power"),
    (dict(name="constant", min_lr=0.01), "does not use min_lr"),
    (dict(name="step"), "at least one boundary"),
    (dict(name="step", boundaries=(10,)), "boundaries must increase"),
    (dict(name="step", boundaries=(6, 4)), "boundaries must increase"),
    (dict(name="step", boundaries=(1,), warmup_epochs=2), "after the warm-up"),
    (dict(name="cosine", min_lr=0.5), "min_lr"),
    (dict(name="constant", batch_size=512), "both"),
])
def test_schedule_rejects_inconsistent_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_schedule(base_lr=0.1, steps_per_epoch=10, total_epochs=10, **kwargs)


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(UnknownNameError, match="constant, cosine, explore, plateau, poly, step"):
        build_schedule("cosin", base_lr=0.1, steps_per_epoch=1, total_epochs=1)
    assert SCHEDULES.names() == ["constant", "cosine", "explore", "plateau", "poly", "step"]


# --- Keras optimizers --------------------------------------------------------------------------

def apply_steps(optimizer, initial, gradients):
    """Applies each gradient in turn to a variable starting at `initial`; returns its values."""
    variable = keras.Variable(np.array(initial, np.float32))
    values = []
    for gradient in gradients:
        optimizer.apply([tf.constant(gradient, tf.float32)], [variable])
        values.append(variable.numpy().copy())
    return values


W0, G1, G2 = np.array([1.0, -2.0]), np.array([0.5, 1.0]), np.array([-1.0, 2.0])


def test_sgd_momentum_follows_keras_convention():
    lr, mu = 0.1, 0.9
    w1, w2 = apply_steps(build_optimizer("sgd", learning_rate=lr, momentum=mu), W0, [G1, G2])
    v1 = -lr * G1
    v2 = mu * v1 - lr * G2
    np.testing.assert_allclose(w1, W0 + v1, rtol=1e-6)
    np.testing.assert_allclose(w2, W0 + v1 + v2, rtol=1e-6)


def test_sgd_nesterov():
    lr, mu = 0.1, 0.9
    w1, w2 = apply_steps(build_optimizer("sgd", learning_rate=lr, momentum=mu, nesterov=True),
                         W0, [G1, G2])
    v1 = -lr * G1
    expected_w1 = W0 + mu * v1 - lr * G1
    v2 = mu * v1 - lr * G2
    np.testing.assert_allclose(w1, expected_w1, rtol=1e-6)
    np.testing.assert_allclose(w2, expected_w1 + mu * v2 - lr * G2, rtol=1e-6)


def test_decoupled_weight_decay_is_applied_before_the_gradient_step():
    lr, decay = 0.1, 0.5
    (w1,) = apply_steps(build_optimizer("sgd", learning_rate=lr, decoupled_weight_decay=decay),
                        W0, [G1])
    np.testing.assert_allclose(w1, W0 * (1 - lr * decay) - lr * G1, rtol=1e-6)
    assert build_optimizer("adamw", learning_rate=lr, decoupled_weight_decay=decay).weight_decay \
        == decay
    assert build_optimizer("sgd", learning_rate=lr).weight_decay is None


@pytest.mark.parametrize("name", ["sgd", "lars"])
def test_global_clipnorm(name):
    # [3, 4] has norm 5; clipped to norm 1 it is [0.6, 0.8]. LARS excludes this vector from
    # adaptation by default, so both take a plain step of lr · clipped gradient.
    (w1,) = apply_steps(build_optimizer(name, learning_rate=0.1, global_clipnorm=1.0),
                        W0, [np.array([3.0, 4.0])])
    np.testing.assert_allclose(w1, W0 - 0.1 * np.array([0.6, 0.8]), rtol=1e-6)


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(UnknownNameError, match="adam, adamw, lars, sgd"):
        build_optimizer("sdg", learning_rate=0.1)
    assert OPTIMIZERS.names() == ["adam", "adamw", "lars", "sgd"]


@pytest.mark.parametrize("name, kwargs, message", [
    ("adam", dict(momentum=0.9), "does not use momentum"),
    ("lars", dict(nesterov=True), "does not use nesterov"),
    ("lars", dict(decoupled_weight_decay=1e-4), "does not use decoupled_weight_decay"),
    ("sgd", dict(beta_1=0.8), "specific arguments are: none"),
    ("adamw", dict(trust_coefficient=0.01), "amsgrad, beta_1, beta_2, epsilon"),
    ("sgd", dict(global_clipnorm=0.0), "global_clipnorm"),
])
def test_optimizer_rejects_arguments_it_does_not_use(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(name, learning_rate=0.1, **kwargs)


@pytest.mark.parametrize("name, kwargs", [
    ("sgd", dict(momentum=0.9, nesterov=True, decoupled_weight_decay=1e-4,
                 global_clipnorm=5.0)),
    ("adam", dict(beta_1=0.8)),
    ("adamw", dict(decoupled_weight_decay=1e-2)),
    ("lars", dict(momentum=0.9, weight_decay=5e-4, trust_coefficient=0.02,
                  exclude_from_adaptation=["norm"])),
])
def test_optimizer_serialization_round_trip(name, kwargs):
    schedule = build_schedule("step", base_lr=0.1, steps_per_epoch=10, total_epochs=10,
                              boundaries=(5,), warmup_epochs=1, batch_size=512,
                              reference_batch_size=256)
    optimizer = build_optimizer(name, learning_rate=schedule, **kwargs)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is type(optimizer)
    assert restored.get_config() == optimizer.get_config()
    assert lr_at(restored._learning_rate, 5) == pytest.approx(0.15)


# --- LARS --------------------------------------------------------------------------------------

def lars_reference(w, v, g, *, lr, momentum, weight_decay, trust, eps, adapted, decayed=None):
    """One LARS step in NumPy (You et al. 2017, Algorithm 1); returns (w, v). `decayed` (default: `adapted`)
    says whether this variable takes the weight decay."""
    weight_decay = weight_decay if (adapted if decayed is None else decayed) else 0.0
    if adapted:
        w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
        local_lr = trust * w_norm / (g_norm + weight_decay * w_norm + eps) \
            if w_norm > 0 and g_norm > 0 else 1.0
        v = momentum * v + lr * local_lr * (g + weight_decay * w)
    else:
        v = momentum * v + lr * (g + weight_decay * w)
    return w - v, v


HYPER = dict(lr=0.5, momentum=0.9, weight_decay=0.01, trust=0.05, eps=1e-8)
RNG = np.random.default_rng(0)
KERNEL, BIAS = RNG.normal(size=(3, 2)), RNG.normal(size=(2,))
KERNEL_GRADS = [RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))]
BIAS_GRADS = [RNG.normal(size=(2,)), RNG.normal(size=(2,))]


def make_lars(**overrides):
    kwargs = dict(learning_rate=HYPER["lr"], momentum=HYPER["momentum"],
                  weight_decay=HYPER["weight_decay"], trust_coefficient=HYPER["trust"],
                  epsilon=HYPER["eps"])
    kwargs.update(overrides)
    return LARS(**kwargs)


def expected_two_steps(w, grads, adapted):
    v = np.zeros_like(w)
    values = []
    for g in grads:
        w, v = lars_reference(w, v, g, adapted=adapted, **HYPER)
        values.append(w)
    return values


def run_two_steps(optimizer, initial_values, grads_per_step, in_tf_function):
    variables = [keras.Variable(np.array(x, np.float32)) for x in initial_values]

    def step(grads):
        optimizer.apply(grads, variables)

    if in_tf_function:
        step = tf.function(step)
    values = []
    for grads in grads_per_step:
        step([tf.constant(g, tf.float32) for g in grads])
        values.append([v.numpy().copy() for v in variables])
    return values


@pytest.mark.parametrize("in_tf_function", [False, True])
def test_lars_matches_numpy_reference_for_kernel_and_excluded_bias(in_tf_function):
    optimizer = make_lars()
    steps = run_two_steps(optimizer, [KERNEL, BIAS], list(zip(KERNEL_GRADS, BIAS_GRADS)),
                          in_tf_function)
    kernel_expected = expected_two_steps(KERNEL, KERNEL_GRADS, adapted=True)
    bias_expected = expected_two_steps(BIAS, BIAS_GRADS, adapted=False)
    for (kernel, bias), kernel_ref, bias_ref in zip(steps, kernel_expected, bias_expected):
        np.testing.assert_allclose(kernel, kernel_ref, rtol=1e-5)
        np.testing.assert_allclose(bias, bias_ref, rtol=1e-5)
    # The adapted step is far from the plain one, so the check above tells them apart.
    plain = expected_two_steps(KERNEL, KERNEL_GRADS, adapted=False)[1]
    assert np.abs(steps[1][0] - plain).max() > 0.1
    assert optimizer.weight_decay is None  # Keras' decoupled pass stays off.


@pytest.mark.parametrize("decayed", [(True, True), (False, True), (True, False)])
def test_lars_decays_exactly_the_variables_it_is_told(decayed):
    """The trainer's --weight_decay_scope reaches LARS: e.g. seed 000 decays the FC bias (rank 1, not adapted)."""
    kernel_decayed, bias_decayed = decayed
    optimizer = make_lars()
    variables = [keras.Variable(np.array(x, np.float32)) for x in (KERNEL, BIAS)]
    optimizer.decay_only([v for v, d in zip(variables, decayed) if d])
    for grads in zip(KERNEL_GRADS, BIAS_GRADS):
        optimizer.apply([tf.constant(g, tf.float32) for g in grads], variables)
    for variable, start, grads, adapted, is_decayed in zip(variables, (KERNEL, BIAS), (KERNEL_GRADS, BIAS_GRADS),
                                                           (True, False), decayed):
        w, v = start, np.zeros_like(start)
        for g in grads:
            w, v = lars_reference(w, v, g, adapted=adapted, decayed=is_decayed, **HYPER)
        np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        optimizer.decay_only([])


def test_lars_epsilon_is_the_same_in_the_class_and_the_builder():
    assert build_optimizer("lars", learning_rate=0.1).epsilon == LARS().epsilon == 1e-9


def test_lars_in_the_trainer_decays_once_and_honours_the_scope(tmp_path):
    """One step of the trainer's model under LARS equals a NumPy LARS step on the data gradient: the decay is
    LARS' alone (not added again as coupled decay) and reaches exactly --weight_decay_scope's variables."""
    from helpers import tiny_config

    from tfregimes.training.phases import phases_from_config
    from tfregimes.training.trainer import build_network_and_wrapper, compile_for_phase
    wd, lr, trust = 0.05, 0.5, 0.02
    config = tiny_config(tmp_path, optimizer="lars", learning_rate=lr, momentum=0.9, weight_decay=wd,
                         lars_trust_coefficient=trust, lr_schedule="constant", lr_boundaries=(),
                         weight_decay_scope="exclude_bn")
    model = build_network_and_wrapper(config, (6,), 3)
    compile_for_phase(model, phases_from_config(config)[0], config, steps_per_epoch=10)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, size=16)
    before = [v.numpy().astype(np.float64) for v in model.network.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model.network(x, training=True))
    grads = [g.numpy().astype(np.float64) for g in tape.gradient(loss, model.network.trainable_variables)]
    model.train_on_batch(x, y)
    hyper = dict(HYPER, lr=lr, weight_decay=wd, trust=trust, eps=1e-9)
    for variable, w, g in zip(model.network.trainable_variables, before, grads):
        # exclude_bn: every kernel and bias of the MLP decays (it has no normalization layer); biases not adapted.
        expected, _ = lars_reference(w, np.zeros_like(w), g, adapted=w.ndim > 1, decayed=True, **hyper)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=variable.path)


def test_lars_uses_unit_local_lr_for_zero_weights():
    zeros = np.zeros((3, 2))
    ((kernel,),) = run_two_steps(make_lars(), [zeros], [[KERNEL_GRADS[0]]], False)
    np.testing.assert_allclose(kernel, -HYPER["lr"] * KERNEL_GRADS[0], rtol=1e-6)


def test_lars_exclusion_options():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="body"),
                              keras.layers.BatchNormalization(name="norm"),
                              keras.layers.Dense(2, name="head")], name="net")

    def by_path(optimizer):
        return {v.path: optimizer.is_adapted(v) for v in model.trainable_variables}

    assert by_path(make_lars()) == {
        "net/body/kernel": True, "net/body/bias": False, "net/norm/gamma": False,
        "net/norm/beta": False, "net/head/kernel": True, "net/head/bias": False}
    assert by_path(make_lars(exclude_vectors=False, exclude_from_adaptation=["norm", "/head/"])) \
        == {"net/body/kernel": True, "net/body/bias": True, "net/norm/gamma": False,
            "net/norm/beta": False, "net/head/kernel": False, "net/head/bias": False}
    optimizer = make_lars()
    optimizer.exclude_variables([model.get_layer("body").kernel])
    assert not optimizer.is_adapted(model.get_layer("body").kernel)
    assert optimizer.is_adapted(model.get_layer("head").kernel)
    optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="before"):
        optimizer.exclude_variables([model.get_layer("head").kernel])


def test_lars_state_survives_keras_save_and_load(tmp_path):
    x = RNG.normal(size=(8, 3)).astype(np.float32)
    y = RNG.normal(size=(8, 2)).astype(np.float32)

    def make_model():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=make_lars(), loss="mse")
        return model

    keras.utils.set_random_seed(1)
    model = make_model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.optimizer, LARS)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    assert int(restored.optimizer.iterations) == 2
    for saved, loaded in zip(model.optimizer.velocities, restored.optimizer.velocities):
        assert np.abs(saved.numpy()).max() > 0
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    # With the momentum restored, one more step gives identical weights.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    restored.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfregimes.optim import LARS

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    w0 = rng.normal(size=(3, 2)).astype(np.float32)

    def train(strategy):
        with strategy.scope():
            w = keras.Variable(w0)
            b = keras.Variable(np.zeros(2, np.float32))
            opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.01, trust_coefficient=0.05)
            opt.build([w, b])  # as model.fit does, outside the replica function
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(3))

        @tf.function
        def step(batch):
            def replica_step(xb, yb):
                with tf.GradientTape() as tape:
                    # Sum over the local examples divided by the global batch: the
                    # all-reduced (summed) gradient is the full-batch mean's gradient.
                    loss = tf.reduce_sum(tf.square(xb @ w.value + b.value - yb)) / 8.0
                opt.apply(tape.gradient(loss, [w.value, b.value]), [w, b])
            strategy.run(replica_step, args=batch)

        for batch in dataset:
            step(batch)
        return w.numpy(), b.numpy()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    single, multi = train(tf.distribute.get_strategy()), train(mirrored)
    assert np.abs(single[0] - w0).max() > 1e-3
    for a, b in zip(single, multi):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    print("MIRRORED_OK")
""")


def test_lars_under_mirrored_strategy_matches_single_device(tmp_path):
    # A process of its own: logical CPU devices must be configured before TensorFlow's runtime starts.
    result = run_script(MIRRORED_SCRIPT, tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert "MIRRORED_OK" in result.stdout, result.stderr[-3000:]
