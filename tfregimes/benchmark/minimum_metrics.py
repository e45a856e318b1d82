"""Cost of the metrics at a minimum per unit of work: `python -m tfregimes.benchmark --suite=minimum_metrics`.

The figure of merit is γ̂ (seed 004 eq. 5) per subset of N' examples against an independent baseline that computes
γ̂ alone, the cheapest way this repository knows: per-example gradients by `tf.vectorized_map` over
`keras.Model.stateless_call` with the model's own variable list (no flat weight vector), the N'×N' Gram matrix J Jᵀ
in float64 inside the same graph, ln det from numpy's Cholesky factor. The library's `SubsetStatistics` computes γ̂,
the spectral radius and the Frobenius estimate from one Jacobian; its ratio to the baseline is what γ̂ costs beyond
the Jacobian it cannot avoid (target ≤ 1.2×).

The other variants time one unit of the other metrics on the same N' examples, for scale: the Jacobian alone, the
SVD route γ̂ took before (ln det from the singular values of the N'×W J in float64), a loss and gradient (one of
sharpness' L-BFGS-B evaluations) and a Hessian-vector product (one power-iteration or Hutchinson probe).

Method: every variant is built and run twice untimed (tracing). Each of `rounds` rounds then times, for every
variant, the baseline immediately followed by the variant, so that a change in the machine's load touches both
sides of a ratio alike; a variant's `ratio_to_baseline` is the median of its rounds' ratios of wall time, its
`cpu_ratio_to_baseline` the same for this process' CPU time (which other processes' load disturbs far less than
wall time on a shared machine), its `ms` the median of its rounds' wall time. The network is at its seeded
initialization and the inputs are synthetic: the cost does not depend on the values, and `log_det` and
`baseline_log_det` in the result check that both routes computed the same γ̂.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tfregimes.benchmark.throughput import machine_state
from tfregimes.diagnostics.minimum import FlatModel, SubsetStatistics
from tfregimes.models import build_model

BASELINE = "baseline_logdet"


@dataclasses.dataclass(frozen=True)
class MinimumSetting:
    model: str = "resnet20"
    input_shape: tuple[int, ...] = (32, 32, 3)
    num_classes: int = 10
    samples: int = 100  # N' of seed 004 (appendix D)
    rounds: int = 5
    seed: int = 0


def baseline_gram_function(model: keras.Model) -> Callable:
    """(images, labels) -> J Jᵀ in float64: the independent route (see the module docstring)."""
    trainable = model.trainable_variables
    non_trainable = model.non_trainable_variables

    @tf.function(reduce_retracing=True)
    def gram(images, labels):
        values = [tf.convert_to_tensor(v) for v in trainable]
        fixed = [tf.convert_to_tensor(v) for v in non_trainable]

        def example_gradient(example):
            image, label = example
            with tf.GradientTape() as tape:
                tape.watch(values)
                logits, _ = model.stateless_call(values, fixed, image[None], training=False)
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=label[None],
                                                                      logits=tf.cast(logits, tf.float32))
            return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, values)], axis=0)

        rows = tf.cast(tf.vectorized_map(example_gradient, (images, labels)), tf.float64)
        return tf.linalg.matmul(rows, rows, transpose_b=True)

    return gram


def baseline_log_det(gram: np.ndarray) -> float:
    return 2.0 * float(np.sum(np.log(np.diag(np.linalg.cholesky(gram)))))


def svd_log_det(jacobian: tf.Tensor) -> float:
    """The route γ̂ took before the Gram matrix: 2 Σ ln σ_i(J) from an SVD of the N'×W J in float64."""
    return 2.0 * float(np.sum(np.log(tf.linalg.svd(tf.cast(jacobian, tf.float64), compute_uv=False).numpy())))


def build_variants(setting: MinimumSetting) -> tuple[dict[str, Callable[[], object]], dict[str, float]]:
    """{name: a callable that does one unit of work}, and the γ̂ values of both routes (they must agree)."""
    keras.utils.set_random_seed(setting.seed)
    model = build_model(setting.model, input_shape=setting.input_shape, num_classes=setting.num_classes)
    rng = np.random.default_rng(setting.seed)
    images = rng.normal(size=(setting.samples, *setting.input_shape)).astype(np.float32)
    labels = rng.integers(0, setting.num_classes, size=setting.samples).astype(np.int32)
    baseline_gram = baseline_gram_function(model)
    statistics = SubsetStatistics(model, chunk_size=setting.samples)
    flat_model = FlatModel(model, batch_size=setting.samples)
    weights = flat_model.weights()
    direction = np.random.default_rng(setting.seed + 1).standard_normal(weights.size)
    variants = {
        BASELINE: lambda: baseline_log_det(baseline_gram(images, labels).numpy()),
        "fisher_statistics": lambda: statistics(images, labels),
        "jacobian_only": lambda: statistics.jacobian(images, labels).numpy(),
        "svd_of_jacobian": lambda: svd_log_det(statistics.jacobian(images, labels)),
        "loss_and_gradient": lambda: flat_model.loss_and_gradient(weights, images, labels),
        "hessian_vector_product": lambda: flat_model.hessian_vector_product(weights, direction, images, labels),
    }
    values = {"log_det": statistics(images, labels)[0], "baseline_log_det": variants[BASELINE](),
              "weights": flat_model.num_weights}
    return variants, values


def time_minimum_metrics(setting: MinimumSetting, *, only: tuple[str, ...] = (), log=print) -> dict:
    """The JSON result: {"variants": {name: {"ms", "ratio_to_baseline", "cpu_ratio_to_baseline", "round_ratios",
    "round_cpu_ratios"}}, "values", "setting", "machine"}."""
    if setting.rounds < 1 or setting.samples < 1:
        raise ValueError("rounds and samples must be >= 1")
    variants, values = build_variants(setting)
    unknown = sorted(set(only) - set(variants))
    if unknown:
        raise ValueError(f"no minimum_metrics variant {', '.join(unknown)}; the variants are: {', '.join(variants)}")
    if only:
        variants = {name: run for name, run in variants.items() if name == BASELINE or name in only}
    for name, run in variants.items():
        started = time.perf_counter()
        run(), run()  # Traces, then one more untimed call.
        log(f"  {name}: traced and warmed up in {time.perf_counter() - started:.1f} s")

    def elapsed_ms(run) -> tuple[float, float]:
        """(wall ms, this process' CPU ms): CPU time is what other processes' load disturbs least."""
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        return 1000.0 * (time.perf_counter() - wall), 1000.0 * (time.process_time() - cpu)

    round_ms = {name: [] for name in variants}
    round_ratios = {name: [] for name in variants}
    cpu_ratios = {name: [] for name in variants}
    for round_index in range(setting.rounds):
        for name, run in variants.items():
            baseline_ms, baseline_cpu = elapsed_ms(variants[BASELINE])
            variant_ms, variant_cpu = (baseline_ms, baseline_cpu) if name == BASELINE else elapsed_ms(run)
            round_ms[name].append(variant_ms)
            round_ratios[name].append(variant_ms / baseline_ms)
            cpu_ratios[name].append(variant_cpu / baseline_cpu)
        log(f"  round {round_index + 1}/{setting.rounds} (wall, CPU): "
            + ", ".join(f"{name} {round_ratios[name][-1]:.2f} {cpu_ratios[name][-1]:.2f}"
                        for name in variants if name != BASELINE))
    result = {name: {"ms": round(float(np.median(round_ms[name])), 1),
                     "ratio_to_baseline": round(float(np.median(round_ratios[name])), 3),
                     "cpu_ratio_to_baseline": round(float(np.median(cpu_ratios[name])), 3),
                     "round_ratios": [round(r, 3) for r in round_ratios[name]],
                     "round_cpu_ratios": [round(r, 3) for r in cpu_ratios[name]]} for name in variants}
    return {"variants": result, "values": values, "setting": dataclasses.asdict(setting), "machine": machine_state()}


def minimum_metrics_report(result: dict) -> str:
    """A readable table, then the JSON result as the LAST line (what scripts read)."""
    setting, values = result["setting"], result["values"]
    lines = [f"{setting['model']} (W = {values['weights']}), N' = {setting['samples']} examples per unit, medians "
             f"of {setting['rounds']} rounds, each variant timed right after the baseline",
             f"γ̂ of one subset: library {values['log_det']:.10g}, baseline {values['baseline_log_det']:.10g}",
             f"{'variant':<24} {'ms':>9} {'× baseline':>10} {'CPU ×':>6}  rounds (wall)"]
    for name, timing in result["variants"].items():
        lines.append(f"{name:<24} {timing['ms']:>9.1f} {timing['ratio_to_baseline']:>10.2f} "
                     f"{timing['cpu_ratio_to_baseline']:>6.2f}  "
                     + " ".join(f"{r:.2f}" for r in timing["round_ratios"]))
    lines.append(json.dumps(result))
    return "\n".join(lines)
