"""Fisher log-determinant γ̂ and the Jacobian-based comparison metrics of Jia & Su 2020 (seed 004).

For T random subsets S^t of N' training examples, J_t = J_w[L̃(S^t, w)] is the N'×W Jacobian of the per-example
cross-entropy (true labels ỹ, §3.1) with respect to all W trainable weights, and ξ^t = J_t J_tᵀ (§5.3):

    fisher_logdet     γ̂ = (1/T) Σ_t ln|ξ^t|                          (eq. 5), by a Cholesky factor of ξ^t
    spectral_radius   (1/T) Σ_t ‖J_t‖₂² / N' = λ_max(ξ^t) / N'         (appendix D: ρ(∇²L) = ‖J/√N‖₂² by eq. 2, 4)
    frobenius         (1/T) Σ_t (1/N') Σ_{x∈S^t} ‖g_x g_xᵀ‖_F²         (appendix D), g_x = ∇_w ℓ(f_w(x), ỹ)

Appendix D samples 100,000 entries of g_x g_xᵀ to estimate its Frobenius norm; here it is computed exactly,
since ‖g gᵀ‖_F² = ‖g‖⁴ = (ξ^t_xx)². Appendix D drops constant factors from the spectral radius; the 1/N' is kept
so that the value estimates ρ(∇²L) itself and compares with `hessian_top`. The paper's N' = T = 100.

Cost. All three come from the N'×N' Gram matrix ξ^t = J_t J_tᵀ, formed in float64 from one Jacobian per subset.
An SVD of the N'×W J_t itself (W = 269,722 for ResNet-20) took 5–13 s per subset on 2 CPU cores against ≈ 1 s for
the Jacobian and ≈ 0.25 s for the Gram matrix (measured; `python -m tfregimes.benchmark --suite=minimum_metrics`).
ln|ξ| = 2 Σ ln L_ii from the Cholesky factor L agrees with 2 Σ ln σ_i(J) to ~1e-14 (relative) on ResNet-20, because
Cholesky's pivots are row-scale invariant: a row with a tiny gradient (a well-fit example) keeps its full relative
precision. ξ is declared singular (ln|ξ| = NaN) when a pivot L_ii² falls to W·ε₆₄ of ξ_ii (the rounding bound
of a float64 dot product of length W): row i is then, within rounding, in the span of the rows before it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base import progress as progress_lib
from tfregimes.diagnostics.minimum.flat_model import FlatModel, cross_entropy

# The authors' code scales the logits to norm 1/0.04 = 25 before the loss: z / (‖z‖ · 0.04).
NORMALIZED_LOGIT_SCALE = 0.04


def normalize_logits(logits: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(logits, axis=-1) / NORMALIZED_LOGIT_SCALE


def jacobian_function(flat_model: FlatModel, normalized_logits: bool = False):
    """A tf.function (flat weights, images, labels) -> per-example loss Jacobian, shape (examples, W).

    `tf.vectorized_map` over a per-example GradientTape: about 1 s for 100 examples of ResNet-20 on 2 CPU cores,
    far faster than `tape.jacobian` (pfor over the whole batch) or a Python loop of gradients."""

    def example_gradient(weights, image, label):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            logits = flat_model.logits(weights, image[None])
            if normalized_logits:
                logits = normalize_logits(logits)
            loss = cross_entropy(logits, label[None])[0]
        return tape.gradient(loss, weights)

    @tf.function(reduce_retracing=True)
    def jacobian(weights, images, labels):
        return tf.vectorized_map(lambda example: example_gradient(weights, *example), (images, labels))

    return jacobian


def per_example_loss_jacobian(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, *,
                              normalized_logits: bool = False, chunk_size: int = 100) -> np.ndarray:
    """J_w[L̃(S, w)] for S = (inputs, labels): one row of float32 per example (chunked to bound memory)."""
    return SubsetStatistics(model, normalized_logits=normalized_logits,
                            chunk_size=chunk_size).jacobian(inputs, labels).numpy()


def gram_matrix(jacobian: np.ndarray | tf.Tensor) -> np.ndarray:
    """ξ = J Jᵀ in float64, for an N'×W Jacobian (float32 rows are exact in float64; only the sums round)."""
    rows = tf.cast(jacobian, tf.float64)
    return tf.linalg.matmul(rows, rows, transpose_b=True).numpy()


def log_det_or_nan(gram: np.ndarray, num_weights: int) -> float:
    """ln|ξ| from a Cholesky factor of the Gram matrix ξ = J Jᵀ, or NaN when ξ is singular to float64 rounding:
    the factorization fails, a row of J is zero, or some pivot L_ii² ≤ W·ε₆₄·ξ_ii (see the module docstring)."""
    diagonal = np.diag(gram)
    if np.any(diagonal <= 0.0):
        return float("nan")
    try:
        pivots = np.diag(np.linalg.cholesky(gram))
    except np.linalg.LinAlgError:
        return float("nan")
    if np.any(pivots ** 2 <= num_weights * np.finfo(np.float64).eps * diagonal):
        return float("nan")
    return 2.0 * float(np.sum(np.log(pivots)))


def gram_statistics(gram: np.ndarray, num_weights: int) -> tuple[float, float, float]:
    """(ln|ξ| or NaN, λ_max(ξ)/N', mean_x ξ_xx²) for one Gram matrix ξ = J Jᵀ of N' rows of W weights."""
    squared_norms = np.diag(gram)
    top_eigenvalue = float(np.linalg.eigvalsh(gram)[-1])  # ‖J‖₂²: the top eigenvalue is accurate to ε·‖ξ‖.
    return (log_det_or_nan(gram, num_weights), top_eigenvalue / len(gram), float(np.mean(squared_norms ** 2)))


def jacobian_statistics(jacobian: np.ndarray | tf.Tensor) -> tuple[float, float, float]:
    """(ln|J Jᵀ| or NaN when singular, ‖J‖₂²/N', mean_x ‖g_x‖⁴) for one N'×W Jacobian, in float64."""
    return gram_statistics(gram_matrix(jacobian), int(jacobian.shape[1]))


class SubsetStatistics:
    """(ln|ξ| or NaN, λ_max(ξ)/N', mean ξ_xx²) of any subset (inputs, labels) of `model`'s examples: one per-example
    Jacobian (traced once, chunked to bound memory) and its Gram matrix serve all three."""

    def __init__(self, model: keras.Model, *, normalized_logits: bool = False, chunk_size: int = 100):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.flat_model = FlatModel(model)
        self.chunk_size = chunk_size
        self._jacobian = jacobian_function(self.flat_model, normalized_logits)
        self._weights = tf.constant(self.flat_model.weights(), tf.float32)

    def jacobian(self, inputs: np.ndarray, labels: np.ndarray) -> tf.Tensor:
        step = self.chunk_size
        blocks = [self._jacobian(self._weights, inputs[i:i + step], labels[i:i + step])
                  for i in range(0, len(inputs), step)]
        return blocks[0] if len(blocks) == 1 else tf.concat(blocks, axis=0)  # One block: no copy of J.

    def __call__(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
        return gram_statistics(gram_matrix(self.jacobian(inputs, labels)), self.flat_model.num_weights)


@dataclasses.dataclass(frozen=True)
class FisherStatistics:
    """Per-trial values; each metric is their mean over the T trials. A trial whose J Jᵀ is singular has a NaN
    log-det, so γ̂ is NaN then, and `metrics()` says how many trials were singular."""

    log_dets: np.ndarray
    spectral_radii: np.ndarray
    frobenius_norms: np.ndarray
    subsets: list[np.ndarray]  # the example indices of each S^t
    num_weights: int
    normalized_logits: bool

    @property
    def singular_trials(self) -> int:
        return int(np.count_nonzero(np.isnan(self.log_dets)))

    def metrics(self) -> dict[str, dict]:
        common = {"samples": len(self.subsets[0]), "trials": len(self.subsets), "weights": self.num_weights,
                  "normalized_logits": self.normalized_logits}
        per_trial = {"fisher_logdet": self.log_dets, "spectral_radius": self.spectral_radii,
                     "frobenius": self.frobenius_norms}
        result = {name: {"value": float(np.mean(values)), "std": float(np.std(values)), **common}
                  for name, values in per_trial.items()}
        singular = self.singular_trials
        result["fisher_logdet"]["singular_trials"] = singular
        result["fisher_logdet"]["status"] = (
            "ok" if not singular else
            f"singular: J Jᵀ is singular to float64 rounding in {singular} of {len(self.subsets)} subsets (a "
            "repeated example or a zero gradient makes rows of J dependent), so γ̂ is NaN")
        return result


def fisher_statistics(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, *, samples: int = 100,
                      trials: int = 100, seed: int = 0, normalized_logits: bool = False,
                      chunk_size: int = 100, progress: progress_lib.Progress | None = None) -> FisherStatistics:
    """γ̂ (seed 004 eq. 5), spectral radius and Frobenius norm (appendix D) from T subsets of N' = `samples`
    examples of (inputs, labels), drawn without replacement by `seed`. With samples = len(inputs) and trials = 1
    the subset is the whole set. The model's variables are never written. `progress`: one step per subset."""
    if not 1 <= samples <= len(inputs):
        raise ValueError(f"fisher samples N' must be in [1, {len(inputs)}] (the examples given), got {samples}")
    if trials < 1:
        raise ValueError(f"fisher trials T must be >= 1, got {trials}")
    statistics = SubsetStatistics(model, normalized_logits=normalized_logits, chunk_size=chunk_size)
    num_weights = statistics.flat_model.num_weights
    if samples > num_weights:
        raise ValueError(f"fisher samples N' = {samples} exceeds the {num_weights} weights: J Jᵀ would be singular")
    rng = np.random.default_rng(seed)
    subsets, rows = [], []
    with progress_lib.task(progress, "fisher", trials, "subset") as task:
        for _ in range(trials):
            subset = np.sort(rng.choice(len(inputs), size=samples, replace=False))
            rows.append(statistics(inputs[subset], labels[subset]))
            subsets.append(subset)
            task.step(logdet=rows[-1][0])
    log_dets, spectral_radii, frobenius_norms = (np.array(column) for column in zip(*rows))
    return FisherStatistics(log_dets, spectral_radii, frobenius_norms, subsets, num_weights, normalized_logits)
