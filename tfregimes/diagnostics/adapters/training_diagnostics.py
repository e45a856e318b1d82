"""Training diagnostics by name (`TRAINING_DIAGNOSTICS`) and `diagnostic_callbacks`, the one call that makes them,
for any Keras model's `fit`; the trainer is one user of it:

    callbacks = diagnostic_callbacks("angular,elr,momentum,margins", every=k, num_train=N, batch_size=B,
                                     train_examples=data.evaluation("train", eval_batch_size),
                                     output_dir=RUN/"diagnostics", tensorboard_dir=RUN/"tensorboard"/"diagnostics")

Put the returned callbacks before Keras' TensorBoard callback, CSVLogger or the trainer's history recorder, so that
the values they add to the epoch logs are written too (Keras appends its own `History` last).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base.registry import Registry
from tfregimes.diagnostics.adapters import callbacks as callbacks_lib
from tfregimes.diagnostics.dynamics.margins import NORMALIZATIONS

Examples = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class DiagnosticSettings:
    """Everything a diagnostic's builder may need; see `diagnostic_callbacks` for the meaning of each field."""

    every: int
    num_train: int
    batch_size: int
    output: callbacks_lib.DiagnosticsOutput
    examples: Callable[[int], Examples] | None  # n -> the first n training examples
    scale_invariant_only: bool
    probe_examples: int
    probe_every: int  # epochs between momentum-scale measurements (a multiple of `every`)
    margin_samples: int
    margin_normalization: str
    margin_layers: tuple[str, ...]
    margin_batch_size: int
    save_margins: str | None
    snapshot_dir: Path | None
    skip_unsupported: bool

    def common(self) -> dict:
        """The arguments every `EpochDiagnostic` takes."""
        return {"every": self.every, "output": self.output,
                "build_examples": None if self.examples is None else lambda: self.examples(1)}

    def need_examples(self, diagnostic: str) -> Callable[[int], Examples]:
        if self.examples is None:
            raise ValueError(f"the {diagnostic!r} diagnostic needs training examples: pass train_examples")
        return self.examples


TRAINING_DIAGNOSTICS: Registry[Callable[[DiagnosticSettings], keras.callbacks.Callback]] = \
    Registry("training diagnostic")


@TRAINING_DIAGNOSTICS.register("angular")
def _angular(settings: DiagnosticSettings) -> keras.callbacks.Callback:
    return callbacks_lib.AngularUpdate(**settings.common(),
                                       scale_invariant_only=settings.scale_invariant_only)


@TRAINING_DIAGNOSTICS.register("elr")
def _effective_learning_rate(settings: DiagnosticSettings) -> keras.callbacks.Callback:
    return callbacks_lib.EffectiveLearningRate(**settings.common(),
                                               num_train=settings.num_train, batch_size=settings.batch_size,
                                               scale_invariant_only=settings.scale_invariant_only)


@TRAINING_DIAGNOSTICS.register("momentum")
def _momentum(settings: DiagnosticSettings) -> keras.callbacks.Callback:
    examples = settings.need_examples("momentum")
    return callbacks_lib.MomentumDiagnostic(**settings.common(),
                                            probe_examples=lambda: examples(settings.probe_examples),
                                            probe_every=settings.probe_every, chunk_size=settings.batch_size,
                                            snapshot_dir=settings.snapshot_dir,
                                            skip_unsupported=settings.skip_unsupported)


@TRAINING_DIAGNOSTICS.register("margins")
def _margins(settings: DiagnosticSettings) -> keras.callbacks.Callback:
    examples = settings.need_examples("margins")
    return callbacks_lib.MarginDistribution(**settings.common(),
                                            examples=lambda: examples(settings.margin_samples),
                                            layer_names=settings.margin_layers,
                                            normalization=settings.margin_normalization,
                                            batch_size=settings.margin_batch_size, save_path=settings.save_margins)


def take_examples(source: tf.data.Dataset | Examples, count: int) -> Examples:
    """The first `count` (or all, if fewer) examples of `source`: (x, y) arrays, or a dataset of (x, y) batches."""
    if isinstance(source, tf.data.Dataset):
        xs, ys, taken = [], [], 0
        for x, y in source.as_numpy_iterator():
            if np.ndim(y) == 0:  # an unbatched dataset
                x, y = x[None], np.asarray(y)[None]
            xs.append(x[:count - taken])
            ys.append(y[:count - taken])
            taken += len(xs[-1])
            if taken >= count:
                break
        if not xs:
            raise ValueError("train_examples is empty")
        return np.concatenate(xs), np.concatenate(ys)
    x, y = source
    return np.asarray(x)[:count], np.asarray(y)[:count]


# The probe gradient's share of the training compute (a gradient per example, as a step): 1 %, so that it leaves
# room in the 3 % of training time that angular, elr and momentum together may cost (their overhead target).
PROBE_BUDGET = 0.01


def default_probe_examples(num_train: int, batch_size: int, every: int) -> int:
    """1 % of the examples trained on between two measurements, at least one batch and at most 1024: ∇f on fewer
    examples than a training batch would be noisier than the steps it is compared with, and ‖∇f‖ of a noisy
    estimate is biased up (E‖ĝ‖² = ‖∇f‖² + tr Σ / n), which would bias the scale r_t down."""
    return min(1024, max(batch_size, math.ceil(PROBE_BUDGET * num_train * every)))


def default_probe_every(probe_examples: int, num_train: int, every: int) -> int:
    """Epochs between momentum-scale measurements: the smallest multiple of `every` after which the probe costs at
    most `PROBE_BUDGET` of the examples trained on since the last one (on short epochs, where one batch is more
    than 1 % of an epoch, the scale is measured less often rather than on a noisier probe)."""
    interval = every
    while math.ceil(PROBE_BUDGET * num_train * interval) < probe_examples:  # ceil as in default_probe_examples
        interval += every
    return interval


def parse_names(names: str | Sequence[str]) -> list[str]:
    """"angular,elr" or ["angular", "elr"] -> known names in order, without repeats; unknown names fail loudly."""
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    parsed = []
    for name in names:
        if name and name not in parsed:
            TRAINING_DIAGNOSTICS.get(name)  # Fails listing the valid names.
            parsed.append(name)
    return parsed


def diagnostic_callbacks(names: str | Sequence[str], *, every: int = 1, num_train: int, batch_size: int,
                         train_examples: tf.data.Dataset | Examples | None = None,
                         output_dir: str | os.PathLike | None = None,
                         tensorboard_dir: str | os.PathLike | None = None,
                         scale_invariant_only: bool = False, probe_examples: int | None = None,
                         margin_samples: int = 1024, margin_normalization: str = "total_variation",
                         margin_layers: Sequence[str] = (), margin_batch_size: int = 256,
                         save_margins: str | os.PathLike | None = None,
                         skip_unsupported: bool = False) -> list[keras.callbacks.Callback]:
    """Keras callbacks for the training diagnostics `names` (see `TRAINING_DIAGNOSTICS.names()`), for the `fit` of
    any Keras model (functional, Sequential, subclassed; it must output logits for the margins) with any Keras
    optimizer, except that "momentum" needs Keras SGD with momentum > 0 on one replica. Their values go into the
    epoch logs, so `History` and callbacks listed after them (CSVLogger, TensorBoard) get them:

        model.fit(x, y, batch_size=64, epochs=10, callbacks=diagnostic_callbacks(
            "angular,elr,momentum,margins", num_train=len(x), batch_size=64, train_examples=(x, y)))

    every: measure at the end of every `every`-th epoch (and of the last one).
    num_train, batch_size: N and B of seed 002's eqs. 10 and 27 (B also bounds the probe's chunks in memory).
    train_examples: training examples, unaugmented, as (x, y) arrays or a dataset of (x, y) batches; the first
        `probe_examples` are the momentum probe set, the first `margin_samples` the margin set, and the first one
        builds a model that `fit` has not built yet (a subclassed one). Read once, at the start of training.
    probe_examples: size of the probe set for ∇f in the momentum scale, measured then every `every` epochs;
        None: `default_probe_examples`, measured every `default_probe_every` epochs (snapshots for the alignment
        are taken every `every` epochs either way).
    output_dir: JSON files (per-layer angles, momentum alignment) and momentum snapshots (`momentum_snapshots/`,
        2 × 4 bytes × parameters each, kept so that a resumed run still has them); None keeps them in memory.
    tensorboard_dir: a TensorBoard run for histograms, per-layer angles and the alignment; None skips them.
    scale_invariant_only: angular update and effective LR over scale-invariant weights only (seed 002 §5.2).
    margin_normalization: "total_variation" (seed 000 A.1) or "none"; margin_layers: hidden layers (by name)
        whose margins are measured too; save_margins: an .npy path for the per-example margins.
    skip_unsupported: "momentum" with an optimizer without a heavy-ball buffer skips those epochs with a one-line
        message (the trainer, whose phases may change optimizer) instead of failing when training starts.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if margin_normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown margin normalization {margin_normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    probe_every = every
    if probe_examples is None:
        probe_examples = default_probe_examples(num_train, batch_size, every)
        probe_every = default_probe_every(probe_examples, num_train, every)
    if min(probe_examples, margin_samples, margin_batch_size) < 1:
        raise ValueError("probe_examples, margin_samples and margin_batch_size must be positive")
    parsed = parse_names(names)
    if not parsed:
        return []
    examples = None
    if train_examples is not None:
        # Read once for both users: the largest prefix either needs.
        largest = max(1, probe_examples if "momentum" in parsed else 0, margin_samples if "margins" in parsed else 0)
        prefix = functools.cache(lambda: take_examples(train_examples, largest))
        examples = lambda count: tuple(a[:count] for a in prefix())  # noqa: E731
    settings = DiagnosticSettings(
        every=every, num_train=num_train, batch_size=batch_size,
        output=callbacks_lib.DiagnosticsOutput(output_dir, tensorboard_dir), examples=examples,
        scale_invariant_only=scale_invariant_only, probe_examples=probe_examples, probe_every=probe_every,
        margin_samples=margin_samples,
        margin_normalization=margin_normalization, margin_layers=tuple(margin_layers),
        margin_batch_size=margin_batch_size, save_margins=str(save_margins) if save_margins else None,
        snapshot_dir=Path(output_dir) / "momentum_snapshots" if output_dir else None,
        skip_unsupported=skip_unsupported)
    return [TRAINING_DIAGNOSTICS.get(name)(settings) for name in parsed]
