"""The long metrics of a minimum report one plain line per step to a stream that is not a terminal (a log file): per
L-BFGS-B iteration of sharpness, per Fisher subset, per Hessian power iteration and Hutchinson probe, per
interpolation point; and nothing with progress=None."""

import io
import re

import keras
import numpy as np

from tfregimes.base.progress import Progress
from tfregimes.diagnostics.adapters import MetricSettings, compute_minimum_metrics
from tfregimes.diagnostics.minimum import interpolation_curve


def model_and_data(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(4, activation="tanh")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    rng = np.random.default_rng(seed)
    return model, rng.normal(size=(24, 5)).astype(np.float32), rng.integers(0, 3, 24).astype(np.int32)


def lines_of(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text
    return text.splitlines()


def test_each_long_metric_prints_one_line_per_step_to_a_log(capsys):
    model, x, y = model_and_data()
    settings = MetricSettings(sample_size=None, sharpness_maxiter=3, sharpness_subspace_dim=4,
                              sharpness_epsilons=(1e-3,), fisher_samples=8, fisher_trials=3, hessian_iterations=4,
                              hessian_tolerance=0.0, hessian_probes=2)
    names = ["sharpness", "fisher_logdet", "hessian_top", "hessian_trace"]
    stream = io.StringIO()
    results = compute_minimum_metrics(model, x, y, names, settings, progress=Progress(stream))
    lines = lines_of(stream)
    number = r"-?[\d.]+(e[+-]\d+)?|nan|-?inf"
    for space in ("full", "subspace"):
        ours = [line for line in lines if line.startswith(f"sharpness {space}_eps1e-3: ")]
        assert len(ours) == results[f"sharpness/{space}_eps1e-3"]["iterations"]
        assert all(re.fullmatch(rf"sharpness {space}_eps1e-3: iteration {i}/3, f=({number})", line)
                   for i, line in enumerate(ours, 1)), ours
    assert [line.split(",")[0] for line in lines if line.startswith("fisher")] == [
        "fisher: subset 1/3", "fisher: subset 2/3", "fisher: subset 3/3"]
    assert [line.split(",")[0] for line in lines if line.startswith("hessian_top")] == [
        f"hessian_top: iteration {i}/4" for i in range(1, results["hessian_top"]["iterations"] + 1)]
    assert [line.split(",")[0] for line in lines if line.startswith("hessian_trace")] == [
        "hessian_trace: probe 1/2", "hessian_trace: probe 2/2"]
    sharpness_iterations = sum(entry["iterations"] for name, entry in results.items() if name.startswith("sharpness/"))
    assert len(lines) == sharpness_iterations + 3 + results["hessian_top"]["iterations"] + 2

    compute_minimum_metrics(model, x, y, names, settings)  # progress=None: silent
    assert capsys.readouterr() == ("", "")


def test_interpolation_prints_one_line_per_point():
    model_1, x, y = model_and_data(0)
    model_2, _, _ = model_and_data(1)
    stream = io.StringIO()
    rows = interpolation_curve(model_1, model_2, {"train": (x, y)}, np.array([0.0, 0.5, 1.0]), batch_size=8,
                               progress=Progress(stream))
    assert lines_of(stream) == [f"interpolation: point {i}/3, alpha={row['alpha']:.4g}, "
                                f"train_loss={row['train_loss']:.4g}" for i, row in enumerate(rows, 1)]
