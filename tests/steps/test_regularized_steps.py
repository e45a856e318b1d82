"""Regularized steps (tfregimes.steps): each checked against a step computed by hand in NumPy on a tiny model.

Hand formulas: a linear softmax model (logits x·W + b, mean cross-entropy) for Fisher and SAM, linear least squares
(a quadratic) for the proximal step, whose K inner steps and sub-problem have closed forms.
"""

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ce_gradients, ce_loss, run_script

from tfregimes.base.registry import UnknownNameError
from tfregimes.steps import (
    REGULARIZERS,
    FisherRegularizedModel,
    RegularizerWindow,
    build_regime_model,
    regularizer_options,
)
from tfregimes.steps.plain import RegimeModel

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# -- hand computations --------------------------------------------------------------------------------------

def linear_model(inputs=3, classes=4, seed=1):
    keras.utils.set_random_seed(seed)
    x = keras.Input((inputs,))
    return keras.Model(x, keras.layers.Dense(classes, bias_initializer="glorot_uniform")(x))


def batch(n=8, inputs=3, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, inputs)).astype(np.float32), rng.integers(0, classes, size=n).astype(np.int32)


def weights64(network):
    return [v.numpy().astype(np.float64) for v in network.trainable_variables]


def fisher_parts(w, b, x, y, alpha, subbatches):
    """Per sub-batch i: g_i, L(B_i, w), L(B_i, w − α g_i) and ∇L(B_i, w − α g_i), by hand."""
    parts = []
    for xi, yi in zip(np.split(x, subbatches), np.split(y, subbatches)):
        gw, gb = ce_gradients(w, b, xi, yi)
        pw, pb = w - alpha * gw, b - alpha * gb
        parts.append(dict(g=(gw, gb), loss=ce_loss(w, b, xi, yi), perturbed_loss=ce_loss(pw, pb, xi, yi),
                          perturbed_g=ce_gradients(pw, pb, xi, yi)))
    return parts


def fisher_total_gradient(w, b, x, y, *, alpha, beta, subbatches, weight_decay):
    """∇[L(B, w) + β R_α(w) + λ/2‖w‖²] with g_i constant (seed 004, eq. 6)."""
    parts = fisher_parts(w, b, x, y, alpha, subbatches)
    total = []
    for k, value in enumerate((w, b)):
        grad_l = ce_gradients(w, b, x, y)[k]
        grad_r = np.mean([p["g"][k] - p["perturbed_g"][k] for p in parts], axis=0)
        total.append(grad_l + beta * grad_r + weight_decay * value)
    return total


def compiled(model, optimizer):
    model.compile(optimizer=optimizer, loss=SPARSE_CE)
    return model


# -- Fisher (seed 004, Algorithm 1) -------------------------------------------------------------------------

def test_fisher_penalty_matches_eq6_and_its_first_order_form():
    x, y = batch(16)
    for alpha in (1.0, 1e-3):
        network = linear_model()
        w, b = weights64(network)
        model = compiled(FisherRegularizedModel(network, fisher_alpha=alpha, fisher_subbatches=4,
                                                clip_global_norm=0), keras.optimizers.SGD(0.0))
        logs = model.train_on_batch(x, y, return_dict=True)
        parts = fisher_parts(w, b, x.astype(np.float64), y, alpha, 4)
        exact = np.mean([p["loss"] - p["perturbed_loss"] for p in parts])
        first_order = alpha * np.mean([np.sum(p["g"][0] ** 2) + np.sum(p["g"][1] ** 2) for p in parts])
        if alpha == 1.0:  # Large α: eq. 6 itself, far from its first-order form.
            assert logs["fisher_penalty"] == pytest.approx(exact, rel=1e-4)
            assert abs(exact - first_order) > 0.05 * first_order
        else:  # Small α: R_α ≈ α · mean_i ‖g_i‖² (§6).
            assert logs["fisher_penalty"] == pytest.approx(first_order, rel=2e-2)
        assert logs["regularized_loss"] == pytest.approx(logs["loss"] + 10.0 * logs["fisher_penalty"], rel=1e-5)
        assert logs["loss"] == pytest.approx(ce_loss(w, b, x.astype(np.float64), y), rel=1e-5)


def test_fisher_step_uses_the_gradient_of_r_alpha_with_g_i_held_constant():
    x, y = batch(8)
    alpha, beta, lr, wd = 0.5, 3.0, 0.1, 0.01
    network = linear_model()
    w, b = weights64(network)
    model = compiled(FisherRegularizedModel(network, weight_decay=wd, decay_variables=network.trainable_variables,
                                            fisher_alpha=alpha, fisher_beta=beta, fisher_subbatches=2,
                                            clip_global_norm=0), keras.optimizers.SGD(lr))
    model.train_on_batch(x, y)
    expected = fisher_total_gradient(w, b, x.astype(np.float64), y, alpha=alpha, beta=beta, subbatches=2,
                                     weight_decay=wd)
    # Differentiating through g_i would add α·H·g terms; this checks they are absent.
    for after, before, grad in zip(network.trainable_variables, (w, b), expected):
        np.testing.assert_allclose(after.numpy(), before - lr * grad, rtol=1e-5, atol=1e-6)


def test_fisher_with_beta_zero_is_the_plain_step():
    x, y = batch(16)
    wd = 5e-3

    def train(make_model):
        network = linear_model()
        model = compiled(make_model(network), keras.optimizers.SGD(0.2, momentum=0.9, nesterov=True))
        for _ in range(3):
            model.train_on_batch(x, y)
        return [v.numpy() for v in network.trainable_variables]

    plain = train(lambda n: RegimeModel(n, weight_decay=wd, decay_variables=n.trainable_variables))
    fisher = train(lambda n: FisherRegularizedModel(n, weight_decay=wd, decay_variables=n.trainable_variables,
                                                    fisher_beta=0.0, fisher_subbatches=4, clip_global_norm=0))
    for a, b in zip(plain, fisher):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def bn_network():
    """Batch norm makes a batch's loss differ from the mean of its sub-batches' losses."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def test_fisher_with_beta_zero_is_the_plain_step_with_batch_norm():
    """β = 0 must differ from the baseline by nothing: L(B, w) on the whole batch, batch norm over all 16 examples."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, size=16).astype(np.int32)

    def train(make_model):
        network = bn_network()
        model = compiled(make_model(network), keras.optimizers.SGD(0.5, momentum=0.9))
        for _ in range(3):
            model.train_on_batch(x, y)
        return [v.numpy() for v in network.weights]  # Moving statistics included.

    plain = train(lambda n: RegimeModel(n, weight_decay=1e-3, decay_variables=n.trainable_variables))
    fisher = train(lambda n: FisherRegularizedModel(n, weight_decay=1e-3, decay_variables=n.trainable_variables,
                                                    fisher_beta=0.0, fisher_subbatches=4, clip_global_norm=0))
    for a, b in zip(plain, fisher):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    regularized = train(lambda n: FisherRegularizedModel(n, fisher_beta=5.0, fisher_alpha=0.5, fisher_subbatches=4,
                                                         clip_global_norm=0))
    assert max(np.abs(a - b).max() for a, b in zip(plain, regularized)) > 1e-3  # β > 0 does change the step.


def test_fisher_batch_loss_subbatches_takes_l_from_the_sub_batch_passes_with_batch_norm():
    """fisher_batch_loss="subbatches": β = 0 steps along the mean of the sub-batch gradients, each computed here with
    batch norm over its own 4 examples by an ordinary tape; moving means get the mean of the sub-batch updates."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, size=16).astype(np.int32)
    lr, wd = 0.5, 1e-3

    reference = bn_network()
    before = [v.numpy() for v in reference.trainable_variables]
    bn = reference.layers[2]
    moving_mean = bn.moving_mean.numpy()
    sub_gradients, sub_means = [], []
    for xi, yi in zip(np.split(x, 4), np.split(y, 4)):
        with tf.GradientTape() as tape:
            loss = SPARSE_CE(yi, _bn_training_logits(reference, xi))
        sub_gradients.append([g.numpy() for g in tape.gradient(loss, reference.trainable_variables)])
        sub_means.append(np.maximum(xi @ reference.layers[1].kernel.numpy() + reference.layers[1].bias.numpy(),
                                    0).mean(axis=0))
    expected = [w - lr * (np.mean([g[k] for g in sub_gradients], axis=0) + wd * w) for k, w in enumerate(before)]
    expected_mean = bn.momentum * moving_mean + (1 - bn.momentum) * np.mean(sub_means, axis=0)

    def train(batch_loss, beta=0.0):
        network = bn_network()
        model = compiled(FisherRegularizedModel(network, weight_decay=wd, decay_variables=network.trainable_variables,
                                                fisher_beta=beta, fisher_subbatches=4, clip_global_norm=0,
                                                fisher_batch_loss=batch_loss), keras.optimizers.SGD(lr))
        model.train_on_batch(x, y)
        return network

    network = train("subbatches")
    for got, want in zip(network.trainable_variables, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(network.layers[2].moving_mean.numpy(), expected_mean, rtol=1e-5, atol=1e-6)
    whole = train("whole")  # The default differs here: batch norm over all 16 examples.
    assert max(np.abs(a.numpy() - b.numpy()).max()
               for a, b in zip(whole.trainable_variables, network.trainable_variables)) > 1e-4


def _bn_training_logits(network, x):
    """The network's logits with batch norm normalizing over x itself (training mode), moving statistics unchanged."""
    dense1, bn, dense2 = network.layers[1:]
    h = dense1(x)
    mean, variance = tf.nn.moments(h, axes=[0])
    h = tf.nn.batch_normalization(h, mean, variance, bn.beta, bn.gamma, bn.epsilon)
    return dense2(h)


def test_fisher_clips_the_total_gradient_by_its_global_norm():
    x, y = batch(8)
    alpha, beta, lr, wd, tau = 0.5, 3.0, 1.0, 0.01, 0.05
    network = linear_model()
    w, b = weights64(network)
    model = compiled(FisherRegularizedModel(network, weight_decay=wd, decay_variables=network.trainable_variables,
                                            fisher_alpha=alpha, fisher_beta=beta, fisher_subbatches=2,
                                            clip_global_norm=tau), keras.optimizers.SGD(lr))
    model.train_on_batch(x, y)
    expected = fisher_total_gradient(w, b, x.astype(np.float64), y, alpha=alpha, beta=beta, subbatches=2,
                                     weight_decay=wd)
    norm = np.sqrt(sum(np.sum(g ** 2) for g in expected))
    assert norm > 10 * tau  # The clip is active ...
    steps = [before - after.numpy() for after, before in zip(network.trainable_variables, (w, b))]
    for step, grad in zip(steps, expected):  # ... and scales the whole gradient to norm τ.
        np.testing.assert_allclose(step, lr * grad * tau / norm, rtol=1e-4, atol=1e-7)


def test_fisher_under_loss_scaling_takes_the_same_step():
    x, y = batch(8)

    def train(optimizer):
        network = linear_model()
        model = compiled(FisherRegularizedModel(network, fisher_alpha=0.5, fisher_beta=3.0, fisher_subbatches=2,
                                                clip_global_norm=0.05), optimizer)
        model.train_on_batch(x, y)
        return [v.numpy() for v in network.trainable_variables]

    plain = train(keras.optimizers.SGD(1.0))
    scaled = train(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0), initial_scale=2.0 ** 10))
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_window_turns_the_regularizer_off_into_the_plain_step():
    x, y = np.tile(batch(16)[0], (2, 1)), np.tile(batch(16)[1], 2)
    wd = 5e-3
    network = linear_model()
    model = compiled(FisherRegularizedModel(network, weight_decay=wd, decay_variables=network.trainable_variables,
                                            fisher_alpha=0.5, fisher_beta=3.0, fisher_subbatches=4,
                                            clip_global_norm=0.01), keras.optimizers.SGD(0.1))
    reference = linear_model()
    plain = compiled(RegimeModel(reference, weight_decay=wd, decay_variables=reference.trainable_variables),
                     keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        callbacks=[RegularizerWindow(start_epoch=1, end_epoch=2)])
    assert history.history["fisher_penalty"][0] == 0.0 == history.history["fisher_penalty"][2]
    assert history.history["fisher_penalty"][1] > 0.0
    assert bool(model.regularizer_active.numpy()) is False
    # Off, the step is the plain step exactly (no penalty, no clip).
    model.regularizer_active.assign(False)
    reference.set_weights(network.get_weights())
    model.train_on_batch(x[:16], y[:16])
    plain.train_on_batch(x[:16], y[:16])
    for a, b in zip(reference.get_weights(), network.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="end_epoch"):
        RegularizerWindow(start_epoch=3, end_epoch=3)


def test_sub_batches_must_divide_the_batch():
    network = linear_model()
    model = compiled(FisherRegularizedModel(network, fisher_subbatches=3), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="multiple of 3"):
        model.train_on_batch(*batch(8))


# -- SAM (Foret et al. 2021) --------------------------------------------------------------------------------

@pytest.mark.parametrize("subbatches", [1, 2])
def test_sam_step_by_hand(subbatches):
    x, y = batch(8)
    rho, lr, wd = 0.3, 0.1, 0.01
    network = linear_model()
    w, b = weights64(network)
    model = compiled(build_regime_model("sam", network, weight_decay=wd, decay_variables=network.trainable_variables,
                                        sam_rho=rho, sam_subbatches=subbatches), keras.optimizers.SGD(lr))
    logs = model.train_on_batch(x, y, return_dict=True)
    grads, perturbed_losses = [np.zeros_like(w), np.zeros_like(b)], []
    for xi, yi in zip(np.split(x.astype(np.float64), subbatches), np.split(y, subbatches)):
        gw, gb = ce_gradients(w, b, xi, yi)
        norm = np.sqrt(np.sum(gw ** 2) + np.sum(gb ** 2))
        ew, eb = w + rho * gw / norm, b + rho * gb / norm
        hw, hb = ce_gradients(ew, eb, xi, yi)
        grads[0] += hw / subbatches
        grads[1] += hb / subbatches
        perturbed_losses.append(ce_loss(ew, eb, xi, yi))
    np.testing.assert_allclose(network.trainable_variables[0].numpy(), w - lr * (grads[0] + wd * w), rtol=1e-5)
    np.testing.assert_allclose(network.trainable_variables[1].numpy(), b - lr * (grads[1] + wd * b), rtol=1e-5)
    assert logs["sam_perturbed_loss"] == pytest.approx(np.mean(perturbed_losses), rel=1e-5)
    assert logs["sam_perturbed_loss"] > logs["loss"]


# -- conservative training (Keskar et al., appendix E.2) ----------------------------------------------------

def least_squares_problem(n=32, d=3, seed=0):
    """Linear regression without bias: f(w) = mean((Xw − t)²) = ½wᵀAw − bᵀw + c with A = 2XᵀX/n, b = 2Xᵀt/n."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    t = rng.normal(size=(n, 1)).astype(np.float32)
    x64 = x.astype(np.float64)
    return x, t, 2 * x64.T @ x64 / n, 2 * x64.T @ t.astype(np.float64) / n


@pytest.mark.parametrize("steps,weight_decay", [(4, 0.0), (4, 0.1), (40, 0.0)])
def test_proximal_step_matches_the_closed_form_on_a_quadratic(steps, weight_decay):
    x, t, a, b = least_squares_problem()
    lam, lr = 0.5, 0.15
    keras.utils.set_random_seed(3)
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    w0 = network.trainable_variables[0].numpy().astype(np.float64)
    model = build_regime_model("proximal", network, weight_decay=weight_decay,
                               decay_variables=network.trainable_variables, proximal_lambda=lam,
                               proximal_steps=steps)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    logs = model.train_on_batch(x, t, return_dict=True)
    # f with decay is the quadratic with A + λ_wd·I. The sub-problem min f(v) + λ/2‖v − w0‖² is solved by
    # v* = (A' + λI)⁻¹(b + λ w0), and K gradient steps from w0 leave the error (I − η(A' + λI))^K (w0 − v*).
    a_decay = a + weight_decay * np.eye(3)
    system = a_decay + lam * np.eye(3)
    solution = np.linalg.solve(system, b + lam * w0)
    after_k_steps = solution + np.linalg.matrix_power(np.eye(3) - lr * system, steps) @ (w0 - solution)
    w1 = network.trainable_variables[0].numpy()
    np.testing.assert_allclose(w1, after_k_steps, rtol=1e-5, atol=1e-6)
    if steps == 40:  # Enough inner steps solve the sub-problem, which is not the plain minimizer.
        np.testing.assert_allclose(w1, solution, atol=1e-5)
        assert np.abs(solution - np.linalg.solve(a_decay, b)).max() > 1e-2
    assert logs["proximal_distance"] == pytest.approx(np.linalg.norm(after_k_steps - w0), rel=1e-4)


def test_one_proximal_step_is_the_plain_step():
    x, y = batch(8)

    def train(make_model):
        network = linear_model()
        model = compiled(make_model(network), keras.optimizers.Adam(0.05))
        for _ in range(2):
            model.train_on_batch(x, y)
        return network.get_weights()

    plain = train(lambda n: RegimeModel(n, weight_decay=0.01, decay_variables=n.trainable_variables))
    proximal = train(lambda n: build_regime_model("proximal", n, weight_decay=0.01,
                                                  decay_variables=n.trainable_variables, proximal_steps=1))
    for a, b in zip(plain, proximal):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def adam_on_the_sub_problem(params, batches, *, lam, steps, lr, weight_decay, beta1=0.9, beta2=0.999, eps=1e-7):
    """Textbook Adam (Kingma & Ba, Algorithm 1) run `steps` times per batch on F(x) = f_B(x) + λ_wd/2‖x‖² +
    λ/2‖x − x_k‖², x_k the weights at the batch's start; moments and step count carry across batches."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    for x, y in batches:
        anchor = [p.copy() for p in params]
        for _ in range(steps):
            t += 1
            data = ce_gradients(params[0], params[1], x, y)
            for i, (p, g_data, a) in enumerate(zip(params, data, anchor)):
                g = g_data + weight_decay * p + lam * (p - a)
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                m_hat, v_hat = m[i] / (1 - beta1 ** t), v[i] / (1 - beta2 ** t)
                params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params, t


def test_proximal_with_adam_takes_k_adam_iterations_on_the_sub_problem():
    """K = 3 with Adam (Keskar's large-batch optimizer): the next iterate is Adam's 3rd iterate on the proximal
    sub-problem, not one Adam step on a pseudo-gradient (which stays within ~1 % of plain Adam)."""
    batches = [batch(16, seed=0), batch(16, seed=1)]
    lam, lr, wd, steps = 2.0, 0.05, 0.01, 3
    network = linear_model()
    w0 = weights64(network)
    model = compiled(build_regime_model("proximal", network, weight_decay=wd,
                                        decay_variables=network.trainable_variables, proximal_lambda=lam,
                                        proximal_steps=steps), keras.optimizers.Adam(lr, epsilon=1e-10))
    logs = [model.train_on_batch(x, y, return_dict=True) for x, y in batches]
    batches64 = [(x.astype(np.float64), y) for x, y in batches]
    expected, updates = adam_on_the_sub_problem(w0, batches64, lam=lam, steps=steps, lr=lr, weight_decay=wd,
                                                eps=1e-10)
    for after, want in zip(network.trainable_variables, expected):
        # ε → 0 in both: Keras adds ε to √v before the bias correction, the textbook after it.
        np.testing.assert_allclose(after.numpy(), want, rtol=2e-5, atol=2e-6)
    assert int(model.optimizer.iterations.numpy()) == updates == 6
    after_first, _ = adam_on_the_sub_problem(w0, batches64[:1], lam=lam, steps=steps, lr=lr, weight_decay=wd)
    distance = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after_first, w0)))
    assert logs[0]["proximal_distance"] == pytest.approx(distance, rel=1e-4)
    # The sub-problem's iterate is far from one plain Adam step (the ~lr-sized move of the old pseudo-gradient).
    one_adam_step, _ = adam_on_the_sub_problem(w0, batches64[:1], lam=0.0, steps=1, lr=lr, weight_decay=wd)
    assert max(np.abs(a - b).max() for a, b in zip(after_first, one_adam_step)) > 0.5 * lr


def test_proximal_window_off_is_one_plain_step_and_keeps_the_schedule_count():
    x, y = batch(16)
    network, reference = linear_model(), linear_model()
    model = compiled(build_regime_model("proximal", network, proximal_lambda=0.5, proximal_steps=3),
                     keras.optimizers.SGD(0.1, momentum=0.9))
    plain = compiled(RegimeModel(reference), keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[RegularizerWindow(start_epoch=1)])
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(reference.get_weights(), network.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert int(model.optimizer.iterations.numpy()) == 3  # One step, counted as K for the schedule.
    model.set_regularizer_active(True)  # Retraces: the next batch takes K steps.
    model.train_on_batch(x, y)
    assert int(model.optimizer.iterations.numpy()) == 6


# -- registry, fit, distribution ----------------------------------------------------------------------------

def test_registry_and_factory_options():
    assert REGULARIZERS.names() == ["fisher", "none", "proximal", "sam"]
    assert regularizer_options("fisher") == {"fisher_alpha": 1e-4, "fisher_beta": 10.0, "fisher_subbatches": 8,
                                             "clip_global_norm": 10.0, "fisher_batch_loss": "whole"}
    assert regularizer_options("proximal") == {"proximal_lambda": 1e-3, "proximal_steps": 3}
    assert regularizer_options("sam") == {"sam_rho": 0.05, "sam_subbatches": 1}
    assert regularizer_options("none") == {}
    assert type(build_regime_model("none", linear_model())) is RegimeModel
    with pytest.raises(ValueError, match="does not take sam_rho; its options are: fisher_alpha"):
        build_regime_model("fisher", linear_model(), sam_rho=0.1)
    with pytest.raises(UnknownNameError, match="valid names: fisher, none, proximal, sam"):
        build_regime_model("dropout", linear_model())
    with pytest.raises(ValueError, match="fisher_subbatches"):
        build_regime_model("fisher", linear_model(), fisher_subbatches=0)
    with pytest.raises(ValueError, match="fisher_batch_loss must be one of whole, subbatches, got 'ghost'"):
        build_regime_model("fisher", linear_model(), fisher_batch_loss="ghost")


def small_network():
    """Batch norm and dropout: the non-trainable state the regimes thread through stateless passes."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dropout(0.2)(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


@pytest.mark.parametrize("name,options", [("fisher", {"fisher_subbatches": 4}), ("proximal", {}),
                                          ("sam", {"sam_subbatches": 2})])
def test_each_regularizer_trains_with_fit(name, options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    network = small_network()
    moving_mean = network.non_trainable_variables[0]
    model = build_regime_model(name, network, weight_decay=1e-4, decay_variables=network.trainable_variables,
                               **options)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=SPARSE_CE,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    history = model.fit(x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0).history
    extra = set(model.extra_metric_names)
    assert extra <= set(history) and not {f"val_{name}" for name in extra} & set(history)
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.isfinite(v) for values in history.values() for v in values)
    assert np.abs(moving_mean.numpy()).max() > 0  # The moving statistics were updated.


MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfregimes.steps import RegularizerWindow, build_regime_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=32).astype(np.int32)

    def train(strategy, name, **options):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((5,))
            hidden = keras.layers.Dense(8, activation="tanh")(inputs)
            network = keras.Model(inputs, keras.layers.Dense(3)(hidden))
            model = build_regime_model(name, network, weight_decay=0.01,
                                       decay_variables=network.trainable_variables, **options)
            model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                            callbacks=[RegularizerWindow(start_epoch=1)]).history
        return network.get_weights(), history

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.get_strategy()
    # fisher_subbatches counts sub-batches of the global batch: 4 are 2 on each of 2 replicas. SAM's are per replica.
    cases = [("fisher", dict(fisher_alpha=0.5, fisher_beta=3.0, clip_global_norm=0.05),
              dict(fisher_subbatches=4), dict(fisher_subbatches=4)),
             ("sam", dict(sam_rho=0.2), dict(sam_subbatches=1), dict(sam_subbatches=2)),
             ("proximal", dict(proximal_lambda=0.5, proximal_steps=3), {}, {})]
    for name, common, on_mirrored, on_single in cases:
        w_m, h_m = train(mirrored, name, **common, **on_mirrored)
        w_s, h_s = train(single, name, **common, **on_single)
        for a, b in zip(w_m, w_s):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, err_msg=name)
        for key in h_s:
            np.testing.assert_allclose(h_m[key], h_s[key], rtol=1e-4, atol=1e-6, err_msg=f"{name} {key}")
        print(name, "matches;", {k: [round(v, 4) for v in vs] for k, vs in h_m.items()})
    print("MIRRORED_OK")
""")


@pytest.mark.slow(15)
def test_regularizers_under_mirrored_strategy_match_one_device(tmp_path):
    # A process of its own: logical CPU devices must be configured before TensorFlow's runtime starts.
    result = run_script(MIRRORED_SCRIPT, tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert "MIRRORED_OK" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]


def test_trainer_schedules_count_the_k_optimizer_steps_of_a_proximal_batch(tmp_path):
    """Boundaries stay in epochs: with K = 3 and 2 batches per epoch, the boundary at epoch 1 is optimizer step 6."""
    from helpers import tiny_config

    from tfregimes.training.phases import phases_from_config
    from tfregimes.training.trainer import build_network_and_wrapper, compile_for_phase
    config = tiny_config(tmp_path, regularizer="proximal", proximal_steps=3, epochs=2, lr_boundaries=(1.0,),
                         learning_rate=0.05)
    model = build_network_and_wrapper(config, (3,), 4)
    optimizer = compile_for_phase(model, phases_from_config(config)[0], config, steps_per_epoch=2)
    x, y = batch(16)
    model.train_on_batch(x, y)  # Batch 1 of epoch 0: optimizer steps 0-2.
    assert int(optimizer.iterations.numpy()) == 3
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    model.train_on_batch(x, y)  # Batch 2: steps 3-5; epoch 1 starts at step 6, with the decayed rate.
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.005)
