"""Steady-state step time of training-step variants, measured in one process on the same network and batch.

Each variant gets the same initial network (same seed) and the same synthetic batch. All are built and warmed up
(traced) first, then run once more in an untimed round. Each timing round then times, for every variant, `steps`
plain steps immediately followed by `steps` of the variant: the ratio of the two is taken over the same few
seconds, so a change in the machine's load (other processes on a shared machine) touches both sides of it alike.
A variant's `ratio_to_plain` is the median of its rounds' ratios, its `step_ms` the median of its rounds' mean step."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfregimes.benchmark.suites import BASELINE, Variant
from tfregimes.models import build_model
from tfregimes.steps import build_regime_model


@dataclasses.dataclass(frozen=True)
class Setting:
    """What every variant is timed on."""

    model: str = "resnet20"
    input_shape: tuple[int, ...] = (32, 32, 3)
    num_classes: int = 10
    batch_size: int = 128
    warmup_steps: int = 5
    steps: int = 3
    rounds: int = 5
    seed: int = 0
    jit_compile: bool = False


@dataclasses.dataclass
class Timing:
    name: str
    round_ms: list[float]  # Each round's mean step (for the baseline: each of its timings).
    round_ratios: list[float]  # Each round's mean step over the plain step's, timed just before it.
    warmup_s: float  # Building, tracing and the warm-up steps.

    @property
    def step_ms(self) -> float:
        return float(np.median(self.round_ms))

    @property
    def ratio_to_plain(self) -> float:
        return float(np.median(self.round_ratios))


def synthetic_batch(setting: Setting) -> tuple[tf.Tensor, tf.Tensor]:
    rng = np.random.default_rng(setting.seed)
    images = rng.normal(size=(setting.batch_size, *setting.input_shape)).astype(np.float32)
    labels = rng.integers(0, setting.num_classes, size=setting.batch_size).astype(np.int32)
    return tf.constant(images), tf.constant(labels)


def build_variant(variant: Variant, setting: Setting) -> keras.Model:
    keras.utils.set_random_seed(setting.seed)  # The same initial weights for every variant.
    network = build_model(setting.model, input_shape=setting.input_shape, num_classes=setting.num_classes)
    model = build_regime_model(variant.regularizer, network, weight_decay=1e-4,
                               decay_variables=network.trainable_variables, **variant.options)
    model.compile(optimizer=variant.optimizer(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=setting.jit_compile)
    return model


def time_variants(variants: Sequence[Variant], setting: Setting, *, log=print) -> list[Timing]:
    """Builds, warms up, then times every variant; see the module docstring for the method."""
    if setting.warmup_steps < 1 or setting.steps < 1 or setting.rounds < 1:
        raise ValueError("warmup_steps, steps and rounds must be >= 1")
    if not variants or variants[0].name != BASELINE:
        raise ValueError(f"the first variant must be the {BASELINE!r} baseline")
    x, y = synthetic_batch(setting)
    models, warmups = {}, {}
    for variant in variants:
        started = time.perf_counter()
        model = build_variant(variant, setting)
        for _ in range(setting.warmup_steps):
            logs = model.train_on_batch(x, y, return_dict=True)
        if not np.isfinite(logs["loss"]):
            raise FloatingPointError(f"variant {variant.name} gave a non-finite loss while warming up")
        models[variant.name], warmups[variant.name] = model, time.perf_counter() - started
        log(f"  {variant.name}: built and warmed up in {warmups[variant.name]:.1f} s")

    def mean_step_ms(model) -> float:
        started = time.perf_counter()
        for _ in range(setting.steps):
            model.train_on_batch(x, y)  # Returns numbers, so each call waits for its step.
        return 1000.0 * (time.perf_counter() - started) / setting.steps

    baseline = models[BASELINE]
    round_ms = {v.name: [] for v in variants}
    round_ratios = {v.name: [] for v in variants}
    for round_index in range(1 + setting.rounds):
        for variant in variants:
            plain_ms = mean_step_ms(baseline)
            variant_ms = plain_ms if variant.name == BASELINE else mean_step_ms(models[variant.name])
            if round_index == 0:
                continue  # An untimed round: each variant's first steps after the others' run slow (up to 4×).
            round_ms[variant.name].append(variant_ms)
            round_ratios[variant.name].append(variant_ms / plain_ms)
            if variant.name != BASELINE:
                round_ms[BASELINE].append(plain_ms)
    return [Timing(v.name, round_ms[v.name], round_ratios[v.name], warmups[v.name]) for v in variants]


def ratios(timings: Sequence[Timing]) -> dict[str, dict[str, float]]:
    """{variant: {"step_ms", "ratio_to_plain"}}, the benchmark's JSON result."""
    if BASELINE not in {t.name for t in timings}:
        raise ValueError(f"no {BASELINE!r} variant to take ratios against")
    return {t.name: {"step_ms": round(t.step_ms, 3), "ratio_to_plain": round(t.ratio_to_plain, 3)}
            for t in timings}


def report(timings: Sequence[Timing], setting: Setting) -> str:
    """A readable table, then the JSON result as the LAST line (what scripts read)."""
    result = ratios(timings)
    xla = "XLA, " if setting.jit_compile else ""
    lines = [f"{setting.model}, input {'x'.join(map(str, setting.input_shape))}, batch {setting.batch_size}, "
             f"{xla}medians of {setting.rounds} rounds of {setting.steps} steps after {setting.warmup_steps} "
             "warm-up steps",
             f"{'variant':<20} {'step ms':>9} {'ratio':>6}  rounds: ms (ratio to the plain steps just before)"]
    for t in timings:
        lines.append(f"{t.name:<20} {t.step_ms:>9.1f} {t.ratio_to_plain:>6.2f}  "
                     + " ".join(f"{ms:.0f} ({ratio:.2f})" for ms, ratio in zip(t.round_ms, t.round_ratios)))
    lines.append(json.dumps(result, sort_keys=False))
    return "\n".join(lines)
