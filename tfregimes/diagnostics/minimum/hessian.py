"""Curvature of the loss at a minimum from Hessian-vector products, as PyHessian (Yao et al. 2020) computes it.

H is the Hessian of the mean cross-entropy over a fixed sample with respect to all trainable weights; H v comes
from double backpropagation (`FlatModel.hessian_vector_product`), never from forming H.

    hessian_top        the dominant eigenvalue of H by power iteration (its largest-magnitude eigenvalue: at a
                       minimum, the largest one): v ← Hv/‖Hv‖, λ = vᵀHv, until λ changes by ≤ tol·|λ|
    hessian_trace      tr(H) by Hutchinson's estimator E[vᵀHv], v with independent ±1 entries
    hessian_frobenius  ‖H‖_F² = tr(H²) = E[‖Hv‖²] with the same probes (seed 004 §7.1 compares ‖∇²L‖_F²)

Seed 004's own `spectral_radius` and `frobenius` approximate H by the Fisher of per-example gradients (fisher.py);
these estimate the exact Hessian.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np

from tfregimes.base import progress as progress_lib
from tfregimes.diagnostics.minimum.flat_model import FlatModel

HessianVector = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class TopEigenvalue:
    value: float
    iterations: int
    converged: bool
    vector: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self) -> dict:
        return {"value": self.value, "iterations": self.iterations, "converged": self.converged}


@dataclasses.dataclass(frozen=True)
class HutchinsonEstimate:
    trace: float
    trace_stderr: float
    frobenius: float  # ‖H‖_F² (squared)
    frobenius_stderr: float
    probes: int

    def metrics(self) -> dict[str, dict]:
        return {"hessian_trace": {"value": self.trace, "stderr": self.trace_stderr, "probes": self.probes},
                "hessian_frobenius": {"value": self.frobenius, "stderr": self.frobenius_stderr,
                                      "probes": self.probes}}


def power_iteration(hvp: HessianVector, dim: int, *, iterations: int = 20, tolerance: float = 1e-3,
                    seed: int = 0, progress: progress_lib.Progress | None = None) -> TopEigenvalue:
    """The dominant eigenvalue of the symmetric operator `hvp` on R^dim, from a seeded Gaussian start.
    `progress`: one step per iteration (at most `iterations`; it stops early once converged)."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    vector = np.random.default_rng(seed).standard_normal(dim)
    vector /= np.linalg.norm(vector)
    eigenvalue = None
    with progress_lib.task(progress, "hessian_top", iterations, "iteration") as task:
        for iteration in range(1, iterations + 1):
            product = hvp(vector)
            estimate = float(vector @ product)  # Rayleigh quotient of a unit vector
            norm = float(np.linalg.norm(product))
            task.step(eigenvalue=estimate)
            if norm == 0.0:  # H v = 0 exactly: v is in the null space; 0 is all this start can tell.
                return TopEigenvalue(0.0, iteration, False, vector)
            vector = product / norm
            if eigenvalue is not None and abs(estimate - eigenvalue) <= tolerance * abs(estimate):
                return TopEigenvalue(estimate, iteration, True, vector)
            eigenvalue = estimate
    return TopEigenvalue(eigenvalue, iterations, False, vector)


def hutchinson(hvp: HessianVector, dim: int, *, probes: int = 20, seed: int = 0,
               progress: progress_lib.Progress | None = None) -> HutchinsonEstimate:
    """tr(H) ≈ mean vᵀHv and ‖H‖_F² ≈ mean ‖Hv‖² over `probes` Rademacher vectors v (Hutchinson 1989).
    `progress`: one step per probe, with the running mean of the trace."""
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    rng = np.random.default_rng(seed)
    traces, squares = [], []
    with progress_lib.task(progress, "hessian_trace", probes, "probe") as task:
        for _ in range(probes):
            vector = rng.choice([-1.0, 1.0], size=dim)
            product = hvp(vector)
            traces.append(float(vector @ product))
            squares.append(float(product @ product))
            task.step(trace=float(np.mean(traces)))

    def stderr(values):
        return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")

    return HutchinsonEstimate(float(np.mean(traces)), stderr(traces), float(np.mean(squares)), stderr(squares),
                              probes)


def _model_hvp(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, batch_size: int):
    flat_model = FlatModel(model, batch_size)
    weights = flat_model.weights()
    return (lambda vector: flat_model.hessian_vector_product(weights, vector, inputs, labels)), weights.size


def hessian_top_eigenvalue(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, *, iterations: int = 20,
                           tolerance: float = 1e-3, seed: int = 0, batch_size: int = 512,
                           progress: progress_lib.Progress | None = None) -> TopEigenvalue:
    """The dominant eigenvalue of the Hessian of the mean cross-entropy over (inputs, labels)."""
    hvp, dim = _model_hvp(model, inputs, labels, batch_size)
    return power_iteration(hvp, dim, iterations=iterations, tolerance=tolerance, seed=seed, progress=progress)


def hessian_trace_and_frobenius(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, *, probes: int = 20,
                                seed: int = 0, batch_size: int = 512,
                                progress: progress_lib.Progress | None = None) -> HutchinsonEstimate:
    """Hutchinson estimates of tr(H) and ‖H‖_F² for the mean cross-entropy over (inputs, labels)."""
    hvp, dim = _model_hvp(model, inputs, labels, batch_size)
    return hutchinson(hvp, dim, probes=probes, seed=seed, progress=progress)
