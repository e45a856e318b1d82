"""How much of the SB/LB sharpness ratio the scale of the weights makes.

Seed 003's box is C_ε = {z : |z_i| ≤ ε(|x_i| + 1)} (eq. 3). Where |x_i| ≪ 1, as for almost every weight of a
network, the box is ≈ ε in every coordinate whatever the weights, so a minimum whose weights are smaller is
perturbed by relatively more: part of a sharpness ratio can be a ratio of weight scales. Beside the paper's φ, each
run's φ with the box scaled to the weights alone, |z_i| ≤ ε|x_i| (full space, ε = 1e-3), is computed here from the
library's own pieces (`tfregimes.diagnostics.minimum.sharpness.maximize_in_box` with those half-widths) on exactly
the objective `tfregimes.evaluate --metrics=sharpness` used: the same fixed sample of the run's training set
(`fixed_sample` with MetricSettings' size and seed), the run's export behind its input normalization, 10 L-BFGS-B
iterations. Under that box the perturbation of a weight is proportional to the weight, so a global rescaling of the
weights rescales the box with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfregimes.base.run_dir import write_atomically

EPSILON = 1e-3
KEY = "full_eps1e-3_weights_box"


def half_widths(x: np.ndarray, epsilon: float) -> np.ndarray:
    """ε|x_i|: the box scaled to the weights alone (seed 003's is ε(|x_i| + 1))."""
    return epsilon * np.abs(np.asarray(x, np.float64))


def compute(run_dir: Path, *, dataset: str, train_subset: int, seed: int) -> dict:
    """{"value": φ (%) with the box ε|x_i|, "loss", "max_loss", "status", "seconds"} of a run's minimum."""
    from tfregimes.data import load_dataset
    from tfregimes.diagnostics.adapters import fixed_sample
    from tfregimes.diagnostics.adapters.evaluate_metrics import MetricSettings
    from tfregimes.diagnostics.minimum.flat_model import FlatModel
    from tfregimes.diagnostics.minimum.sharpness import maximize_in_box
    from tfregimes.training.scoring import load_keras_model, normalization_to_load, split_input_normalization

    export = run_dir / "export"
    network, normalize = split_input_normalization(load_keras_model(export))
    data = load_dataset(dataset, normalization=normalization_to_load(export, "auto"),
                        train_subset=train_subset or None, seed=seed)
    inputs, labels = data.arrays("train")
    if normalize is not None:
        inputs = normalize.normalize_numpy(inputs)
    settings = MetricSettings()
    inputs, labels = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    flat = FlatModel(network, settings.batch_size)
    x = flat.weights()
    result = maximize_in_box(lambda w: flat.loss_and_gradient(w, inputs, labels), x, EPSILON,
                             maxiter=settings.sharpness_maxiter, half_widths=half_widths(x, EPSILON))
    return {"value": result.value, "loss": result.loss, "max_loss": result.max_loss, "status": result.status,
            "seconds": result.seconds}


def path_of(sweep_dir: Path, run: str) -> Path:
    return sweep_dir / f"weights_box_{run}.json"


def ensure(sweep_dir: Path, rows: list[dict], *, dataset: str, train_subset: int, train: bool) -> dict[str, dict]:
    """{run: result} for every finished run of `rows`, computed once (`weights_box_<run>.json` in the sweep
    directory, written last: a rerun reuses it); with `train` false only the ones already computed."""
    out = {}
    for row in rows:
        path = path_of(sweep_dir, row["run"])
        if not path.exists() and train and row["state"] == "done":
            print(f"[table] sharpness with the box ε|x_i| of {row['run']}", flush=True)
            write_atomically(path, json.dumps(compute(sweep_dir / row["run"], dataset=dataset,
                                                      train_subset=train_subset, seed=row["seed"])))
        if path.exists():
            out[row["run"]] = json.loads(path.read_text())
    return out
