"""ε-sharpness of a minimum (Keskar et al. 2017, seed 003, their eq. 3/4; see ../shared/seeds/README.md).

With the box C_ε = {z : |z_i| ≤ ε(|(A⁺x)_i| + 1)} around the weights x,

    φ_{x,f}(ε, A) = (max_{y ∈ C_ε} f(x + Ay) − f(x)) / (1 + f(x)) × 100,

A = I (the full space) or a random n×p matrix (a random p-dimensional subspace; A⁺ its pseudo-inverse). The
maximization is inexact: a few iterations of L-BFGS-B (Keskar et al. use 10) from y = 0, on a float64 wrapper of
the float32 loss and gradient. f is the mean cross-entropy over a fixed sample, evaluated deterministically.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import scipy.optimize

from tfregimes.base import progress as progress_lib
from tfregimes.diagnostics.minimum.flat_model import FlatModel

SPACES = ("full", "subspace")
# The paper's settings, the defaults of every caller (tfregimes.evaluate's flags, MetricSettings, sweeps' tags).
EPSILONS = (1e-3, 5e-4)  # seed 003, Tables 3-4
SUBSPACE_DIM = 100  # p, seed 003 Table 4
MAXITER = 10  # Keskar et al. §2.2.2: 10 iterations of L-BFGS-B
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]  # weights -> (f, ∇f), float64


@dataclasses.dataclass(frozen=True)
class SharpnessResult:
    value: float  # φ in percent (Keskar eq. 3/4)
    space: str  # "full" (A = I) or "subspace" (a random n×p A)
    epsilon: float  # ε of the box C_ε
    loss: float  # f(x)
    max_loss: float  # the largest f(x + Ay) found inside C_ε
    status: str  # L-BFGS-B's message
    iterations: int
    evaluations: int
    seconds: float
    perturbation: np.ndarray = dataclasses.field(repr=False)  # A y at that point, one entry per weight

    def to_dict(self) -> dict:
        return {"value": self.value, "space": self.space, "epsilon": self.epsilon, "status": self.status,
                "loss": self.loss, "max_loss": self.max_loss,
                "iterations": self.iterations, "evaluations": self.evaluations, "seconds": self.seconds}


def sharpness_key(space: str, epsilon: float) -> str:
    """"full_eps1e-3", "subspace_eps5e-4": the keys of `model_sharpness` (evaluate's JSON: `sharpness/full_eps1e-3`)."""
    mantissa, exponent = f"{epsilon:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{space}_eps{mantissa}e{int(exponent)}"


def box_half_widths(x: np.ndarray, epsilon: float, subspace: np.ndarray | None = None) -> np.ndarray:
    """ε(|(A⁺x)_i| + 1), the half-widths of C_ε; A = I when `subspace` is None."""
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    coordinates = x if subspace is None else np.linalg.lstsq(subspace, x, rcond=None)[0]
    return epsilon * (np.abs(coordinates) + 1.0)


def maximize_in_box(objective: Objective, x: np.ndarray, epsilon: float, *, subspace: np.ndarray | None = None,
                    maxiter: int = MAXITER, half_widths: np.ndarray | None = None,
                    progress: progress_lib.Progress | None = None, label: str = "sharpness") -> SharpnessResult:
    """φ_{x,f}(ε, A) for a float64 `objective` w -> (f(w), ∇f(w)); `subspace` is A (None: the full space).

    `half_widths` may pass box_half_widths(x, epsilon, subspace) when it is already known (the pseudo-inverse
    of a large A costs seconds). `progress` reports each L-BFGS-B iteration under `label`, with f at its iterate."""
    if maxiter < 1:
        raise ValueError(f"maxiter must be >= 1, got {maxiter}")
    x = np.asarray(x, np.float64)
    if subspace is not None and (subspace.ndim != 2 or subspace.shape[0] != x.size):
        raise ValueError(f"the subspace matrix must be {x.size}×p, got shape {subspace.shape}")
    bound = box_half_widths(x, epsilon, subspace) if half_widths is None else half_widths
    start = time.perf_counter()
    perturb = (lambda y: y) if subspace is None else (lambda y: subspace @ y)
    loss, gradient_at_x = objective(x)
    best = {"loss": loss, "y": np.zeros_like(bound)}

    def negative(y):
        # L-BFGS-B minimizes; -f and -Aᵀ∇f. Its iterates stay inside the bounds, so every point seen is in C_ε.
        value, gradient = (loss, gradient_at_x) if not y.any() else objective(x + perturb(y))
        if value > best["loss"] and np.all(np.abs(y) <= bound * (1 + 1e-12)):
            best.update(loss=value, y=y.copy())
        projected = gradient if subspace is None else subspace.T @ gradient
        return -float(value), -np.asarray(projected, np.float64)

    def iteration_done(intermediate_result):  # SciPy passes the iterate's OptimizeResult by this parameter name.
        task.step(f=-float(intermediate_result.fun))

    # ftol = gtol = 0: stop after `maxiter` iterations, not earlier because the gradient at a minimum is tiny.
    with progress_lib.task(progress, label, maxiter, "iteration") as task:
        result = scipy.optimize.minimize(negative, np.zeros_like(bound), jac=True, method="L-BFGS-B",
                                         bounds=scipy.optimize.Bounds(-bound, bound), callback=iteration_done,
                                         options={"maxiter": maxiter, "ftol": 0.0, "gtol": 0.0})
    max_loss = float(best["loss"])
    return SharpnessResult(value=100.0 * (max_loss - loss) / (1.0 + loss),
                           space=SPACES[0] if subspace is None else SPACES[1], epsilon=float(epsilon),
                           loss=float(loss), max_loss=max_loss,
                           status=str(result.message), iterations=int(result.nit), evaluations=int(result.nfev),
                           seconds=time.perf_counter() - start, perturbation=perturb(best["y"]))


def random_subspace(num_weights: int, dim: int, seed: int) -> np.ndarray:
    """A: num_weights × dim, standard normal entries (float64: 8·n·p bytes, 216 MB for ResNet-20 and p = 100)."""
    if not 1 <= dim <= num_weights:
        raise ValueError(f"subspace dimension must be in [1, {num_weights}], got {dim}")
    return np.random.default_rng(seed).standard_normal((num_weights, dim))


def model_sharpness(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, *,
                    epsilons: Sequence[float] = EPSILONS, spaces: Sequence[str] = SPACES,
                    subspace_dim: int = SUBSPACE_DIM, maxiter: int = MAXITER, seed: int = 0, batch_size: int = 512,
                    progress: progress_lib.Progress | None = None) -> dict[str, SharpnessResult]:
    """φ for every (space, ε), keyed by `sharpness_key`; f is the mean cross-entropy over (inputs, labels).

    One random A (from `seed`) serves every ε of the subspace. The model's variables are never written.
    `progress`: one step per L-BFGS-B iteration, e.g. "sharpness full_eps1e-3: iteration 3/10, f=0.1234"."""
    unknown = sorted(set(spaces) - set(SPACES))
    if unknown or not spaces:
        raise ValueError(f"sharpness spaces must be among {SPACES}, got {list(spaces)}")
    flat_model = FlatModel(model, batch_size)
    x = flat_model.weights()
    objective = lambda weights: flat_model.loss_and_gradient(weights, inputs, labels)  # noqa: E731
    results = {}
    for space in spaces:
        subspace = random_subspace(x.size, subspace_dim, seed) if space == "subspace" else None
        coordinates = x if subspace is None else np.linalg.lstsq(subspace, x, rcond=None)[0]
        for epsilon in epsilons:
            half_widths = box_half_widths(coordinates, epsilon)
            key = sharpness_key(space, epsilon)
            results[key] = maximize_in_box(objective, x, epsilon, subspace=subspace, maxiter=maxiter,
                                           half_widths=half_widths, progress=progress, label=f"sharpness {key}")
    return results
