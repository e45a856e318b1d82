"""`MINIMUM_METRICS`: metric name -> how to compute it, and `compute_minimum_metrics`, which `tfregimes.evaluate
--metrics=...` calls.

Metrics of one family share their expensive part (the Fisher trio shares per-example Jacobians; the Hutchinson
pair shares Hessian-vector products), so each family is computed once however many of its names are asked for.
Loss-based metrics (sharpness, Hessian, robustness) use one fixed random sample of the examples given
(`MetricSettings.sample_size`); the Fisher metrics draw their own subsets from all of them.

Every result is flat: one entry per name, each a dict with a "value". A metric with several values gives one entry
per value, named `<metric>/<key>` and carrying its own settings: sharpness has one per space and ε,
`sharpness/full_eps1e-3` with "space" and "epsilon" (`MinimumMetric.entry_names` lists them before any work).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from tfregimes.base.progress import Progress
from tfregimes.base.registry import Registry
from tfregimes.diagnostics.dynamics import margins
from tfregimes.diagnostics.minimum import fisher_information, hessian, sharpness

# The function: the package's `robustness` attribute is it, not its module.
from tfregimes.diagnostics.minimum.robustness import robustness


@dataclasses.dataclass(frozen=True)
class MetricSettings:
    """Every knob of the metrics at a minimum; the defaults are the papers' where they give one."""

    seed: int = 0
    batch_size: int = 512
    sample_size: int | None = 2048  # examples for the loss-based metrics; None: all of them
    sharpness_epsilons: tuple[float, ...] = sharpness.EPSILONS
    sharpness_spaces: tuple[str, ...] = sharpness.SPACES
    sharpness_subspace_dim: int = sharpness.SUBSPACE_DIM
    sharpness_maxiter: int = sharpness.MAXITER
    fisher_samples: int = 100  # N', seed 004 appendix D
    fisher_trials: int = 100  # T, seed 004 appendix D
    fisher_normalized_logits: bool = False
    hessian_iterations: int = 20
    hessian_tolerance: float = 1e-3
    hessian_probes: int = 20
    robustness_norm: str = "spectral"  # Seed 004 §7.1 writes ‖·‖₂.
    robustness_output: str = "probabilities"
    margin_normalization: str = "total_variation"
    save_margins: str | None = None  # An .npy path for the per-example margins.

    def __post_init__(self):
        if self.sample_size is not None and self.sample_size < 1:
            raise ValueError(f"sample_size must be positive or None, got {self.sample_size}")
        object.__setattr__(self, "sharpness_epsilons", tuple(float(e) for e in self.sharpness_epsilons))
        object.__setattr__(self, "sharpness_spaces", tuple(self.sharpness_spaces))


# (model, inputs, labels, settings, progress or None) -> {metric name: result dict}
FamilyFunction = Callable[[keras.Model, np.ndarray, np.ndarray, MetricSettings, Progress | None], dict[str, dict]]


@dataclasses.dataclass(frozen=True)
class MinimumMetric:
    family: FamilyFunction
    definition: str
    # settings -> the keys of its entries beyond the metric's name (None: one entry, named like the metric).
    keys: Callable[[MetricSettings], list[str]] | None = None

    def entry_names(self, name: str, settings: MetricSettings) -> list[str]:
        """The names of the entries metric `name` gives under `settings`: `name`, or `name/<key>` for each key."""
        return [name] if self.keys is None else [f"{name}/{key}" for key in self.keys(settings)]


MINIMUM_METRICS: Registry[MinimumMetric] = Registry("metric")


def fixed_sample(inputs: np.ndarray, labels: np.ndarray, size: int | None, seed: int):
    """A fixed random subset of `size` examples chosen by `seed` (in their original order); all of them if
    `size` is None or not smaller than their number."""
    if size is None or size >= len(inputs):
        return inputs, labels
    chosen = np.sort(np.random.default_rng(seed).choice(len(inputs), size=size, replace=False))
    return inputs[chosen], labels[chosen]


def _sharpness(model, inputs, labels, settings, progress):
    inputs, labels = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    results = sharpness.model_sharpness(
        model, inputs, labels, epsilons=settings.sharpness_epsilons, spaces=settings.sharpness_spaces,
        subspace_dim=settings.sharpness_subspace_dim, maxiter=settings.sharpness_maxiter, seed=settings.seed,
        batch_size=settings.batch_size, progress=progress)
    return {f"sharpness/{key}": result.to_dict() for key, result in results.items()}


def _sharpness_keys(settings: MetricSettings) -> list[str]:
    return [sharpness.sharpness_key(space, epsilon)
            for space in settings.sharpness_spaces for epsilon in settings.sharpness_epsilons]


def _fisher(model, inputs, labels, settings, progress):
    return fisher_information.fisher_statistics(model, inputs, labels, samples=settings.fisher_samples,
                                                trials=settings.fisher_trials, seed=settings.seed,
                                                normalized_logits=settings.fisher_normalized_logits,
                                                progress=progress).metrics()


def _hessian_top(model, inputs, labels, settings, progress):
    inputs, labels = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    top = hessian.hessian_top_eigenvalue(model, inputs, labels, iterations=settings.hessian_iterations,
                                         tolerance=settings.hessian_tolerance, seed=settings.seed,
                                         batch_size=settings.batch_size, progress=progress)
    return {"hessian_top": top.to_dict()}


def _hutchinson(model, inputs, labels, settings, progress):
    inputs, labels = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    return hessian.hessian_trace_and_frobenius(model, inputs, labels, probes=settings.hessian_probes,
                                               seed=settings.seed, batch_size=settings.batch_size,
                                               progress=progress).metrics()


def _robustness(model, inputs, labels, settings, progress):
    inputs, _ = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    return {"robustness": robustness(model, inputs, norm=settings.robustness_norm,
                                     output=settings.robustness_output)}


def _margins(model, inputs, labels, settings, progress):
    inputs, labels = fixed_sample(inputs, labels, settings.sample_size, settings.seed)
    started = time.perf_counter()
    values = margins.first_order_margins(model, inputs, labels, normalization=settings.margin_normalization,
                                         batch_size=settings.batch_size)["input"]
    if settings.save_margins:
        np.save(settings.save_margins, values)
    summary = margins.margin_summary(values)
    return {"margins": {"value": summary["mean"], **summary, "normalization": settings.margin_normalization,
                        "seconds": time.perf_counter() - started}}


MINIMUM_METRICS.register("sharpness", MinimumMetric(
    _sharpness, "ε-sharpness, full space and random subspace (seed 003, eq. 3/4)", keys=_sharpness_keys))
for _name, _family, _definition in [
    ("fisher_logdet", _fisher, "γ̂ = mean over T subsets of ln|J Jᵀ| (seed 004, eq. 5)"),
    ("spectral_radius", _fisher, "mean over T subsets of ‖J‖₂²/N' (seed 004, appendix D)"),
    ("frobenius", _fisher, "mean over T subsets of mean ‖g_x g_xᵀ‖_F² (seed 004, appendix D)"),
    ("hessian_top", _hessian_top, "dominant Hessian eigenvalue, power iteration on Hessian-vector products"),
    ("hessian_trace", _hutchinson, "tr(H), Hutchinson's estimator"),
    ("hessian_frobenius", _hutchinson, "‖H‖_F² = tr(H²), Hutchinson's estimator"),
    ("robustness", _robustness, "mean ‖J_x[softmax(f(x))]‖² over examples (seed 004, §7.1)"),
    ("margins", _margins, "first-order input margins, inter-quartile mean and quartiles (seed 000 A.1)"),
]:
    MINIMUM_METRICS.register(_name, MinimumMetric(_family, _definition))


def compute_minimum_metrics(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, names: Sequence[str],
                            settings: MetricSettings = MetricSettings(),
                            progress: Progress | None = None) -> dict[str, dict]:
    """{entry name: result} for each requested metric at the model's weights, over (inputs, labels) (normally the
    training split), in the order of `names`. Each result is a dict with a "value" and the seconds it took (its own,
    or its family's time); a metric with several values has several entries (`MinimumMetric.entry_names`). The
    model's variables are never written. `progress` (None: silent) shows the long ones step by step: sharpness per
    L-BFGS-B iteration, the Fisher metrics per subset, the Hessian metrics per iteration or probe."""
    metrics = [(name, MINIMUM_METRICS.get(name)) for name in names]  # Unknown names fail before any work.
    results: dict[str, dict] = {}
    done: set[str] = set()
    for name, metric in metrics:
        if name in done:
            continue
        start = time.perf_counter()
        family_results = metric.family(model, inputs, labels, settings, progress)
        seconds = time.perf_counter() - start
        for other_name, other in metrics:
            if other.family is metric.family:
                done.add(other_name)
                for entry in other.entry_names(other_name, settings):
                    result = family_results[entry]
                    results[entry] = {**result, "seconds": result.get("seconds", seconds)}
    return {entry: results[entry] for name, metric in metrics for entry in metric.entry_names(name, settings)}
