"""Metrics at a minimum (tfregimes/diagnostics/minimum) against closed forms and independent computations."""

import csv
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from tfregimes.base.registry import UnknownNameError
from tfregimes.diagnostics.adapters import MINIMUM_METRICS, MetricSettings, compute_minimum_metrics
from tfregimes.diagnostics.minimum import (
    FlatModel,
    fisher_statistics,
    hessian_top_eigenvalue,
    hessian_trace_and_frobenius,
    hutchinson,
    input_jacobian_norms,
    interpolation_alphas,
    interpolation_curve,
    maximize_in_box,
    model_sharpness,
    per_example_loss_jacobian,
    plot_interpolation,
    power_iteration,
    robustness,
    write_interpolation_csv,
)
from tfregimes.diagnostics.minimum.fisher_information import jacobian_statistics
from tfregimes.training.scoring import ModelLoadError, load_keras_model

NUM_CLASSES = 3


def tiny_model(seed: int, *, batch_norm: bool = True, hidden: int = 4, inputs: int = 5) -> keras.Model:
    """inputs -> Dense(hidden, tanh) [-> BN with non-trivial moving statistics] -> Dropout -> Dense(3) logits."""
    keras.utils.set_random_seed(seed)
    x = layer_input = keras.Input((inputs,))
    x = keras.layers.Dense(hidden, activation="tanh")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.5)(x)  # Must be off: metrics evaluate in inference mode.
    model = keras.Model(layer_input, keras.layers.Dense(NUM_CLASSES)(x))
    rng = np.random.default_rng(seed)
    if batch_norm:
        bn = model.layers[2]
        bn.moving_mean.assign(rng.normal(size=hidden).astype(np.float32) * 0.3)
        bn.moving_variance.assign(rng.uniform(0.2, 2.0, size=hidden).astype(np.float32))
        bn.gamma.assign(rng.uniform(0.5, 1.5, size=hidden).astype(np.float32))
    return model


def tiny_data(count: int, seed: int = 0, inputs: int = 5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, inputs)).astype(np.float32), rng.integers(0, NUM_CLASSES, count).astype(np.int32)


def mean_loss(model, x, y) -> float:
    logits = model(x, training=False)
    return float(np.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)))


def example_gradient(model, x, y, normalized=False) -> np.ndarray:
    """One example's loss gradient with respect to all trainable weights, the plain way."""
    with tf.GradientTape() as tape:
        logits = model(x[None], training=False)
        if normalized:
            logits = logits / (tf.norm(logits) * 0.04)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[None], logits=logits)[0]
    return np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, model.trainable_variables)])


def full_hessian(model, x, y) -> np.ndarray:
    """The W×W Hessian of the mean cross-entropy by nested tapes."""
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y, logits=model(x, training=False)))
        gradient = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, model.trainable_variables)], 0)
    blocks = outer.jacobian(gradient, model.trainable_variables)
    return np.concatenate([b.numpy().reshape(len(gradient), -1) for b in blocks], axis=1).astype(np.float64)


# --- ε-sharpness (seed 003) ---

def test_sharpness_of_a_quadratic_is_the_box_maximum():
    """f(w) = ½ Σ d_i (w_i − c_i)² is convex and separable: the maximum over |z_i| ≤ ε(|x_i| + 1) sits at the
    corner away from c, f_max = ½ Σ d_i (|x_i − c_i| + ε(|x_i| + 1))²."""
    rng = np.random.default_rng(1)
    d, c, x = rng.uniform(0.5, 4.0, 6), rng.normal(size=6), rng.normal(size=6)
    objective = lambda w: (0.5 * np.sum(d * (w - c) ** 2), d * (w - c))  # noqa: E731
    epsilon = 1e-3
    f_x = 0.5 * np.sum(d * (x - c) ** 2)
    f_max = 0.5 * np.sum(d * (np.abs(x - c) + epsilon * (np.abs(x) + 1)) ** 2)
    result = maximize_in_box(objective, x, epsilon, maxiter=10)
    assert result.max_loss == pytest.approx(f_max, rel=1e-12)
    assert result.value == pytest.approx(100 * (f_max - f_x) / (1 + f_x), rel=1e-9)
    np.testing.assert_allclose(result.perturbation, np.sign(x - c) * epsilon * (np.abs(x) + 1), rtol=1e-12)


def test_subspace_sharpness_of_a_quadratic_is_the_box_maximum():
    """With orthogonal columns a_i of norms s_i and f(w) = ½‖w − c‖², f(x + Ay) = f(x) + Σ (a_iᵀ(x − c) y_i
    + ½ s_i² y_i²), and the box is |y_i| ≤ ε(|(A⁺x)_i| + 1) with A⁺x = (a_iᵀx / s_i²)_i."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(40, 3)))
    s = np.array([0.5, 2.0, 3.0])
    a = q * s
    c, x = rng.normal(size=40), rng.normal(size=40)
    objective = lambda w: (0.5 * np.sum((w - c) ** 2), w - c)  # noqa: E731
    epsilon = 5e-4
    radius = epsilon * (np.abs(a.T @ x / s ** 2) + 1)
    f_x = 0.5 * np.sum((x - c) ** 2)
    f_max = f_x + np.sum(np.abs(a.T @ (x - c)) * radius + 0.5 * s ** 2 * radius ** 2)
    result = maximize_in_box(objective, x, epsilon, subspace=a, maxiter=10)
    assert result.max_loss == pytest.approx(f_max, rel=1e-12)
    assert result.value == pytest.approx(100 * (f_max - f_x) / (1 + f_x), rel=1e-9)


def test_model_sharpness_reports_a_loss_reached_inside_the_box():
    model, (x, y) = tiny_model(0), tiny_data(64)
    before = [w.copy() for w in model.get_weights()]
    results = model_sharpness(model, x, y, epsilons=(1e-2, 5e-4), subspace_dim=5, maxiter=3, seed=0)
    assert list(results) == ["full_eps1e-2", "full_eps5e-4", "subspace_eps1e-2", "subspace_eps5e-4"]
    weights = FlatModel(model).weights()
    loss = mean_loss(model, x, y)
    for key, result in results.items():
        assert result.loss == pytest.approx(loss, rel=1e-5)
        assert result.max_loss > result.loss and result.iterations >= 1 and result.status
        if key.startswith("full"):
            epsilon = float(key.split("eps")[1])
            assert np.all(np.abs(result.perturbation) <= epsilon * (np.abs(weights) + 1) * (1 + 1e-9))
        # The reported maximum is the loss of a network holding the perturbed weights, evaluated independently.
        perturbed = keras.models.clone_model(model)
        perturbed.set_weights(before)
        for variable, value in zip(perturbed.trainable_variables, FlatModel(model).unflatten(
                weights + result.perturbation)):
            variable.assign(value)
        assert result.max_loss == pytest.approx(mean_loss(perturbed, x, y), rel=1e-5)
        assert result.value == pytest.approx(100 * (result.max_loss - loss) / (1 + loss), rel=1e-4)
    assert results["full_eps1e-2"].value > results["full_eps5e-4"].value
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# --- Fisher log-det γ̂ and the Jacobian metrics (seed 004) ---

@pytest.mark.parametrize("normalized", [False, True])
def test_fisher_metrics_equal_those_of_gradients_computed_one_by_one(normalized):
    model, (x, y) = tiny_model(3, hidden=6), tiny_data(30, seed=3)  # W = 5·6 + 6 + 2·6 + 6·3 + 3 = 69 ≥ N'
    stats = fisher_statistics(model, x, y, samples=12, trials=3, seed=4, normalized_logits=normalized,
                              chunk_size=5)
    assert len(stats.subsets) == 3 and all(len(set(s)) == 12 for s in stats.subsets)
    assert not np.array_equal(stats.subsets[0], stats.subsets[1])
    for t, subset in enumerate(stats.subsets):
        jacobian = np.stack([example_gradient(model, x[i], y[i], normalized) for i in subset]).astype(np.float64)
        sign, log_det = np.linalg.slogdet(jacobian @ jacobian.T)
        assert sign == 1 and stats.log_dets[t] == pytest.approx(log_det, abs=1e-3)
        assert stats.spectral_radii[t] == pytest.approx(np.linalg.norm(jacobian, 2) ** 2 / 12, rel=1e-5)
        assert stats.frobenius_norms[t] == pytest.approx(np.mean(np.sum(jacobian ** 2, axis=1) ** 2), rel=1e-5)
    metrics = stats.metrics()
    assert metrics["fisher_logdet"]["value"] == pytest.approx(np.mean(stats.log_dets))
    assert metrics["fisher_logdet"]["weights"] == 69 and metrics["fisher_logdet"]["samples"] == 12


def test_fisher_with_the_whole_set_and_one_trial_uses_every_example():
    model, (x, y) = tiny_model(5, hidden=6), tiny_data(10)
    stats = fisher_statistics(model, x, y, samples=10, trials=1)
    np.testing.assert_array_equal(stats.subsets[0], np.arange(10))
    with pytest.raises(ValueError, match="exceeds the 69 weights"):
        fisher_statistics(model, *tiny_data(80), samples=70, trials=1)


def svd_log_det(jacobian: np.ndarray) -> tuple[float, float]:
    """(2 Σ ln σ_i(J), σ_max(J)²) by numpy's SVD of J itself: independent of the Gram-matrix route."""
    singular_values = np.linalg.svd(np.asarray(jacobian, np.float64), compute_uv=False)
    return 2.0 * float(np.sum(np.log(singular_values))), float(singular_values[0] ** 2)


def test_fisher_log_det_from_the_gram_matrix_equals_the_svd_of_the_jacobian_to_float64_precision():
    model, (x, y) = tiny_model(7, hidden=8), tiny_data(40, seed=7)  # W = 5·8 + 8 + 2·8 + 8·3 + 3 = 91
    stats = fisher_statistics(model, x, y, samples=20, trials=3, seed=1, chunk_size=7)
    for t, subset in enumerate(stats.subsets):
        log_det, top = svd_log_det(per_example_loss_jacobian(model, x[subset], y[subset], chunk_size=7))
        assert abs(stats.log_dets[t] - log_det) <= 1e-11 * abs(log_det)
        assert stats.spectral_radii[t] == pytest.approx(top / 20, rel=1e-12)
    jacobian = np.random.default_rng(0).normal(size=(30, 500)).astype(np.float32) * np.geomspace(1, 1e-6, 30)[:, None]
    log_det, top = svd_log_det(jacobian)  # Rows of norms 1 … 1e-6: ln|J Jᵀ| ≈ −800, still to float64 precision.
    assert jacobian_statistics(jacobian)[0] == pytest.approx(log_det, rel=1e-12)
    assert jacobian_statistics(jacobian)[1] == pytest.approx(top / 30, rel=1e-12)


def test_a_singular_j_jt_gives_a_nan_log_det_and_says_so():
    full = np.random.default_rng(1).integers(-3, 4, size=(6, 40)).astype(np.float32)  # Sums of these are exact.
    combination, repeat, zero_row = full.copy(), full.copy(), full.copy()
    combination[4] = full[0] - 2 * full[2]
    repeat[5] = full[1]
    zero_row[3] = 0.0
    assert jacobian_statistics(full)[0] == pytest.approx(svd_log_det(full)[0], rel=1e-12)
    for jacobian in (combination, repeat, zero_row):
        log_det, spectral, frobenius = jacobian_statistics(jacobian)
        assert math.isnan(log_det) and np.isfinite(spectral) and np.isfinite(frobenius)
    model, (x, y) = tiny_model(5, hidden=6), tiny_data(10)
    x[7], y[7] = x[2], y[2]  # The same example twice: two equal rows of J.
    stats = fisher_statistics(model, x, y, samples=10, trials=1)
    metrics = stats.metrics()
    assert math.isnan(metrics["fisher_logdet"]["value"]) and metrics["fisher_logdet"]["singular_trials"] == 1
    assert metrics["fisher_logdet"]["status"].startswith("singular: J Jᵀ is singular")
    assert np.isfinite(metrics["spectral_radius"]["value"]) and np.isfinite(metrics["frobenius"]["value"])
    assert fisher_statistics(model, *tiny_data(10), samples=10, trials=1).metrics()["fisher_logdet"]["status"] == "ok"


# --- Hessian: power iteration and Hutchinson ---

def test_power_iteration_and_hutchinson_on_a_diagonal_operator_are_exact():
    diagonal = np.array([3.0, -1.0, 0.5, 2.0])
    top = power_iteration(lambda v: diagonal * v, 4, iterations=200, tolerance=1e-12, seed=0)
    assert top.value == pytest.approx(3.0, rel=1e-9) and top.converged
    # For a diagonal H and ±1 probes, vᵀHv = tr(H) and ‖Hv‖² = ‖H‖_F² for every single probe.
    estimate = hutchinson(lambda v: diagonal * v, 4, probes=3, seed=0)
    assert estimate.trace == pytest.approx(4.5) and estimate.frobenius == pytest.approx(14.25)


def test_hessian_metrics_match_the_full_hessian_of_a_tiny_model():
    model, (x, y) = tiny_model(7, batch_norm=False, hidden=4), tiny_data(40, seed=7)  # W = 39
    x *= np.array([4, 1, 1, 1, 1], np.float32)  # A clear gap below the dominant eigenvalue: fast convergence.
    hessian = full_hessian(model, x, y)
    flat_model = FlatModel(model, batch_size=16)  # Three batches, summed.
    vector = np.random.default_rng(0).normal(size=flat_model.num_weights)
    np.testing.assert_allclose(flat_model.hessian_vector_product(flat_model.weights(), vector, x, y),
                               hessian @ vector, rtol=1e-4, atol=1e-6)
    eigenvalues = np.linalg.eigvalsh(hessian)
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    top = hessian_top_eigenvalue(model, x, y, iterations=500, tolerance=1e-9, seed=1)
    assert top.converged and top.value == pytest.approx(dominant, rel=1e-5)
    probes = 300
    estimate = hessian_trace_and_frobenius(model, x, y, probes=probes, seed=2)
    # Rademacher probes: Var(vᵀMv) = 2(‖M‖_F² − Σ M_ii²), with M = H for the trace and M = H² for ‖H‖_F².
    square = hessian @ hessian
    for value, matrix, exact in [(estimate.trace, hessian, np.trace(hessian)),
                                 (estimate.frobenius, square, np.sum(hessian ** 2))]:
        spread = math.sqrt(2 * (np.sum(matrix ** 2) - np.sum(np.diag(matrix) ** 2)) / probes)
        assert abs(value - exact) < 4 * spread + 1e-6 * abs(exact)


# --- Robustness ---

def test_robustness_of_a_linear_model_is_its_weight_norm():
    """logits = Wᵀ flatten(x) + b: J_x[logits] = Wᵀ for every x; for probabilities J = (diag p − p pᵀ) Wᵀ."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES)])
    kernel, bias = (w.astype(np.float64) for w in model.get_weights())
    images = np.random.default_rng(7).normal(size=(9, 2, 2, 3)).astype(np.float32)
    frobenius = input_jacobian_norms(model, images, norm="frobenius", output="logits", batch_size=4)
    np.testing.assert_allclose(frobenius, np.sum(kernel ** 2), rtol=1e-5)
    spectral = input_jacobian_norms(model, images, norm="spectral", output="logits")
    np.testing.assert_allclose(spectral, np.linalg.norm(kernel, 2) ** 2, rtol=1e-5)
    logits = images.reshape(9, -1).astype(np.float64) @ kernel + bias
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    jacobians = [(np.diag(p) - np.outer(p, p)) @ kernel.T for p in probabilities]
    expected = [np.sum(j ** 2) for j in jacobians]
    np.testing.assert_allclose(input_jacobian_norms(model, images, norm="frobenius"), expected, rtol=1e-4)
    # The default is seed 004 §7.1's ‖·‖₂ (the spectral norm) of the softmax output's Jacobian.
    expected = [np.linalg.norm(j, 2) ** 2 for j in jacobians]
    np.testing.assert_allclose(input_jacobian_norms(model, images), expected, rtol=1e-4)
    assert robustness(model, images)["norm"] == "spectral" == MetricSettings().robustness_norm


# --- 1-D interpolation ---

def test_interpolation_matches_networks_holding_the_interpolated_weights(tmp_path):
    model_1, model_2 = tiny_model(8), tiny_model(9)
    model_2.layers[2].moving_variance.assign(np.full(4, 0.1, np.float32))  # So that a = 2 extrapolates below 0.
    data = {"train": tiny_data(50, seed=1), "test": tiny_data(20, seed=2)}
    alphas = np.array([-1.0, 0.0, 0.5, 2.0])
    rows = interpolation_curve(model_1, model_2, data, alphas, batch_size=16, bn_statistics="interpolate")
    names = [v.path for v in model_1.weights]
    for alpha, row in zip(alphas, rows):
        reference = keras.models.clone_model(model_1)
        reference.set_weights([np.maximum(w, 0) if name.endswith("moving_variance") else w
                               for name, w in zip(names, (alpha * b + (1 - alpha) * a for a, b in
                                                          zip(model_1.get_weights(), model_2.get_weights())))])
        for split, (x, y) in data.items():
            assert row[f"{split}_loss"] == pytest.approx(mean_loss(reference, x, y), rel=1e-5)
            accuracy = np.mean(np.argmax(reference(x, training=False), axis=1) == y)
            assert row[f"{split}_accuracy"] == pytest.approx(accuracy)
    assert rows[1]["train_loss"] == pytest.approx(mean_loss(model_1, *data["train"]), rel=1e-6)
    write_interpolation_csv(rows, tmp_path / "curve.csv")
    plot_interpolation(rows, tmp_path / "curve.png")
    with open(tmp_path / "curve.csv") as f:
        assert list(csv.DictReader(f))[3]["alpha"] == "2.0"
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_allclose(interpolation_alphas(31)[[0, 10, 30]], [-1.0, 0.0, 2.0])


# --- Registry and purity ---

def test_every_metric_leaves_the_weights_untouched_and_unknown_names_fail():
    model, (x, y) = tiny_model(10, hidden=6), tiny_data(40, seed=10)
    before = [w.copy() for w in model.get_weights()]
    settings = MetricSettings(sample_size=24, sharpness_maxiter=2, sharpness_subspace_dim=4, fisher_samples=8,
                              fisher_trials=2, hessian_iterations=3, hessian_probes=2)
    results = compute_minimum_metrics(model, x, y, MINIMUM_METRICS.names(), settings)
    names = MINIMUM_METRICS.names()
    assert list(results) == [entry for name in names for entry in MINIMUM_METRICS.get(name).entry_names(name, settings)]
    for name, entry in results.items():  # Flat: one entry per value, sharpness' per space and ε with its settings.
        assert math.isfinite(entry["value"]) and entry["seconds"] >= 0, name
    assert {(results[f"sharpness/{space}_eps{eps}"]["space"], results[f"sharpness/{space}_eps{eps}"]["epsilon"])
            for space in ("full", "subspace") for eps in ("1e-3", "5e-4")} == {
        (space, eps) for space in ("full", "subspace") for eps in (1e-3, 5e-4)}
    assert results["fisher_logdet"]["seconds"] == results["frobenius"]["seconds"]  # One shared computation.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(UnknownNameError, match="valid names: fisher_logdet, frobenius"):
        compute_minimum_metrics(model, x, y, ["sharpness", "sharpnes"])


# --- The CLI ---

def test_evaluate_cli_adds_the_requested_metrics_and_interpolation(tiny_run, tmp_path):
    _, result = tiny_run
    output, prefix = tmp_path / "eval.json", tmp_path / "interp"
    completed = run_cli(
        "tfregimes.evaluate", f"--model={result.run_dir.export_dir}", "--dataset=synthetic", f"--output={output}",
        "--metrics=sharpness,fisher_logdet,spectral_radius,frobenius,hessian_top,hessian_trace,robustness",
        "--metrics_samples=0", "--sharpness_maxiter=2", "--fisher_samples=20", "--fisher_trials=2",
        "--hessian_iterations=3", "--hessian_probes=2", "--seed=3",
        f"--interpolate_with={result.run_dir.keras_model_path}", "--interpolation_points=4",
        f"--interpolation_output={prefix}")
    assert completed.returncode == 0, completed.stderr
    evaluation = json.loads(output.read_text())
    assert evaluation["accuracy"] == result.metrics["test_accuracy"]  # The plain evaluation is unchanged.
    sharpness = {name: entry for name, entry in evaluation.items() if name.startswith("sharpness")}
    assert sorted(sharpness) == ["sharpness/full_eps1e-3", "sharpness/full_eps5e-4", "sharpness/subspace_eps1e-3",
                                 "sharpness/subspace_eps5e-4"]
    assert all(entry["value"] >= 0 and entry["status"] and entry["iterations"] <= 2 for entry in sharpness.values())
    assert "sharpness/subspace_eps5e-4" in completed.stdout
    assert evaluation["fisher_logdet"]["samples"] == 20 and evaluation["fisher_logdet"]["trials"] == 2
    for name in ("fisher_logdet", "spectral_radius", "frobenius", "hessian_top", "hessian_trace", "robustness"):
        assert math.isfinite(evaluation[name]["value"]), name
        assert name in completed.stdout
    assert evaluation["metric_settings"]["seed"] == 3 and evaluation["metrics_split"] == "train"
    # A model interpolated with itself is itself: the whole train split's loss at every a.
    curve = evaluation["interpolation"]["curve"]
    assert [row["alpha"] for row in curve] == [-1.0, 0.0, 1.0, 2.0]
    assert all(row["train_loss"] == pytest.approx(result.metrics["train_loss"], rel=1e-5) for row in curve)
    assert (tmp_path / "interp.csv").exists() and (tmp_path / "interp.png").exists()


def test_evaluate_cli_refuses_unknown_metric_names_up_front(tiny_run):
    completed = run_cli("tfregimes.evaluate", f"--model={tiny_run[1].run_dir.export_dir}", "--dataset=synthetic",
                        "--metrics=sharpness,flatness")
    assert completed.returncode == 1 and "fisher_logdet, frobenius, hessian_frobenius" in completed.stderr


def test_metrics_need_the_keras_model_not_a_bare_saved_model(tiny_run):
    run_dir = tiny_run[1].run_dir
    assert isinstance(load_keras_model(run_dir.export_dir), keras.Model)  # export/ holds model.keras.
    with pytest.raises(ModelLoadError, match="is a SavedModel, which holds no Keras model"):
        load_keras_model(run_dir.saved_model_dir)
