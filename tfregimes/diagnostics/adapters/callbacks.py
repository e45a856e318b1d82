"""Thin Keras callbacks around the pure functions of this package.

Each callback runs at the end of every `every`-th epoch (1-based epochs e with e % every == 0, and the last epoch)
and adds its scalars to that epoch's `logs`, so Keras' TensorBoard callback and the run's history.csv pick them up
when they come after these callbacks in the list. What does not fit in a row of scalars (per-layer angles, margin
histograms, the post-training momentum alignment) goes to a `DiagnosticsOutput`: a TensorBoard run of its own
and JSON files. No callback has a per-batch hook (that would force Keras to dispatch every step synchronously);
all work happens at epoch boundaries.

`self.model` is whatever model `fit` runs: a functional, Sequential or subclassed Keras model with any Keras optimizer,
or the trainer's `RegimeModel`, whose plain network is `self.model.network` (`network_of`). Only the momentum
diagnostic needs a particular optimizer (Keras SGD with momentum), and it says so when training starts. A plain
model's values go into the epoch logs like the trainer's, so `History`, `CSVLogger` and TensorBoard listed after
these callbacks get them; the learning rate is the optimizer's (or its schedule's) of the epoch's last step.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfregimes.base import keras_private, run_files
from tfregimes.base.background import BackgroundFiles
from tfregimes.base.run_files import json_safe
from tfregimes.base.scalars import ScalarWriter
from tfregimes.diagnostics.dynamics import angular, learning_rate, margins, momentum
from tfregimes.diagnostics.dynamics.weight_groups import group_by_layer, select_variables
from tfregimes.optim.state import current_learning_rate
from tfregimes.steps.plain import RegimeModel


def last_step_learning_rate(optimizer: keras.optimizers.Optimizer, logs: dict | None = None) -> float:
    """The learning rate of the optimizer's last step: the epoch's `learning_rate` when the trainer's `EpochLogs`
    already put it in `logs`, else computed the same way."""
    if logs and "learning_rate" in logs:
        return float(logs["learning_rate"])
    return current_learning_rate(optimizer)


def network_of(model: keras.Model) -> keras.Model:
    """The network whose weights and outputs a diagnostic measures: a `RegimeModel`'s `network` (the wrapper's call
    is the network's, but only the network has the functional graph that scale invariance and hidden-layer margins
    read), else the model `fit` runs itself."""
    return model.network if isinstance(model, RegimeModel) else model


class DiagnosticsOutput:
    """Where diagnostics write besides the epoch logs: a TensorBoard run (`tensorboard_dir`) and JSON files
    (`output_dir`). Either may be None, and then that kind of output is skipped. Per-epoch writes (scalars,
    histograms, JSON lines) run on the `background` thread; `wait()` (or `flush()`) for them."""

    def __init__(self, output_dir: str | os.PathLike | None = None,
                 tensorboard_dir: str | os.PathLike | None = None):
        self.output_dir = Path(output_dir) if output_dir else None
        self.tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir else None
        self.background = BackgroundFiles()
        self._writer = None
        self._scalar_writer = None

    def wait(self) -> None:
        self.background.wait()

    @property
    def writer(self):
        if self._writer is None and self.tensorboard_dir is not None:
            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        return self._writer

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is None or not values:
            return
        if self._scalar_writer is None:
            self._scalar_writer = ScalarWriter(self.writer)
        self.background.submit(self._scalar_writer, dict(values), step)

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        if self.writer is None:
            return

        def write():
            with self.writer.as_default():
                tf.summary.histogram(tag, values, step=step)
        self.background.submit(write)

    def flush(self) -> None:
        """Waits for the background writes, then writes what the TensorBoard writer holds (it also does by itself,
        every 10 events and every 2 minutes)."""
        self.wait()
        if self._writer is not None:
            self._writer.flush()

    def append_json_line(self, name: str, record) -> None:
        """Appends one JSON record to the JSON-lines file `name` (cheap each epoch; a resumed run appends the
        epochs it redoes again, so readers keep the last record of each epoch)."""
        if self.output_dir is None:
            return
        line = json.dumps(json_safe(record), allow_nan=False) + "\n"

        def write():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / name, "a") as f:
                f.write(line)
        self.background.submit(write)

    def write_json(self, name: str, data) -> None:
        """Atomically (a temporary file renamed over `name`), NaN as null; no fsync: it is rewritten each epoch."""
        if self.output_dir is not None:
            run_files.write_json(self.output_dir / name, data, indent=1, fsync=False)


class EpochDiagnostic(keras.callbacks.Callback):
    """A callback that measures at the end of every `every`-th epoch and of the last epoch.

    `build_examples`: a callable returning a few (x, y) training examples, with which a model that is not built when
    training starts is built (see `_build_model`)."""

    def __init__(self, *, every: int = 1, output: DiagnosticsOutput | None = None,
                 build_examples: Callable[[], tuple] | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}")
        self.every = every
        self.output = output or DiagnosticsOutput()
        self.build_examples = build_examples
        self._built_for = None

    def on_train_begin(self, logs=None):
        if not self.model.built:
            self._build_model()
        # Once per model, not once per fit: a run fits once per phase, and retracing each time would cost seconds.
        if self._built_for is not self.model:
            self.build()
            self._built_for = self.model

    def _build_model(self) -> None:
        """Keras' TensorFlow backend builds a model that is not built yet (a subclassed one) in its first step, after
        `on_train_begin`: too late to read its starting weights. Built here as Keras' other backends build it before
        training: a symbolic pass over example inputs (nothing computed; the initializers draw as they would)."""
        if self.build_examples is None:
            raise ValueError(f"{type(self).__name__} needs the model's weights when training starts, and "
                             f"{self.model.name!r} is not built: build it (model.build(input_shape) or call it on a "
                             "batch) before fit, or pass train_examples to diagnostic_callbacks")
        keras_private.symbolic_build(self.model, self.build_examples())

    def build(self) -> None:
        """Creates what the diagnostic needs for `self.model` (variables, compiled functions)."""

    def is_measured(self, epoch: int, every: int | None = None) -> bool:
        """Whether the end of 0-based `epoch` is measured (every `every` epochs, default `self.every`)."""
        return (epoch + 1) % (every or self.every) == 0 or epoch + 1 == (self.params or {}).get("epochs")

    def on_train_end(self, logs=None):
        self.output.flush()

    def wait_for_files(self) -> None:
        """Returns when the files this diagnostic writes in the background are complete."""
        self.output.wait()


class AngularUpdate(EpochDiagnostic):
    """Seed 002 eq. 11: the angle between the weights at the start and the end of a measured epoch.

    Logs `angular_update` (radians, whole weight vector); the angle of each layer's weights goes to TensorBoard
    (`angular_update/<layer>`) and to `angular_update_layers.jsonl`, one JSON line per measured epoch.
    """

    LAYERS_FILE = "angular_update_layers.jsonl"

    def __init__(self, *, scale_invariant_only: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.scale_invariant_only = scale_invariant_only
        self._reference = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._has_reference = False
        self._reference_end = None  # The 0-based epoch whose end weights the reference holds.

    def build(self):
        variables = select_variables(network_of(self.model), self.scale_invariant_only)
        self._groups = group_by_layer(variables)
        self._reference = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self._copy = tf.function(lambda: [r.assign(v.value) for r, v in zip(self._reference, variables)],
                                 autograph=False)
        self._angles = angular.make_device_angles(self._reference, variables, self._groups)

    def on_epoch_begin(self, epoch, logs=None):
        self._has_reference = self.is_measured(epoch)
        if self._has_reference and self._reference_end != epoch - 1:
            self._copy()
            self._reference_end = epoch - 1

    def on_epoch_end(self, epoch, logs=None):
        if not self._has_reference or logs is None:
            return
        # The weights now are the next epoch's start: copied as its reference in the same device call.
        whole, by_layer = self._angles()
        self._reference_end = epoch
        logs["angular_update"] = whole
        self.output.scalars({f"angular_update/{name}": value for name, value in by_layer.items()}, step=epoch)
        self.output.append_json_line(self.LAYERS_FILE, {"epoch": epoch + 1, "angular_update": whole,
                                                        "layers": by_layer})


class EffectiveLearningRate(EpochDiagnostic):
    """Seed 002 eqs. 9, 10 and 27 with the learning rate of the epoch's last step and the weights at its end.

    Logs `weight_norm` (‖x‖), `effective_lr` (η/‖x‖²), `effective_lr_per_epoch` (ηN/(‖x‖²B)) and, for SGD,
    `tuning_factor` (Nηλ/(B(1−μ)), λ the RegimeModel's coupled weight decay (0 for other models), μ the
    optimizer's momentum, plus Nηλ_d/B for decoupled decay λ_d; also under mixed precision's LossScaleOptimizer;
    it changes only with the schedule and between phases). Other optimizers (Adam, LARS) have no eq. 27: not logged.
    """

    def __init__(self, *, num_train: int, batch_size: int, scale_invariant_only: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_train = num_train
        self.batch_size = batch_size
        self.scale_invariant_only = scale_invariant_only

    def build(self):
        variables = select_variables(network_of(self.model), self.scale_invariant_only)
        self._squared_norm = tf.function(
            lambda: tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in variables]), autograph=False)

    def _coupled_weight_decay(self) -> float:
        """λ of eq. 27: the `RegimeModel`'s coupled decay. A plain model's L2 regularizers may differ per layer and
        are not read: λ = 0 there (the tuning factor then counts only the optimizer's decoupled decay)."""
        return self.model.weight_decay if isinstance(self.model, RegimeModel) else 0.0

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self.is_measured(epoch):
            return
        optimizer = self.model.optimizer
        lr = last_step_learning_rate(optimizer, logs)
        squared_norm = float(self._squared_norm())
        logs["weight_norm"] = math.sqrt(squared_norm)
        logs["effective_lr"] = learning_rate.effective_learning_rate(lr, squared_norm)
        logs["effective_lr_per_epoch"] = learning_rate.effective_learning_rate_per_epoch(
            lr, squared_norm, num_train=self.num_train, batch_size=self.batch_size)
        inner = getattr(optimizer, "inner_optimizer", optimizer)  # Inside a LossScaleOptimizer (mixed_float16).
        if isinstance(inner, keras.optimizers.SGD):
            logs["tuning_factor"] = learning_rate.tuning_factor(
                num_train=self.num_train, learning_rate=lr, weight_decay=self._coupled_weight_decay(),
                batch_size=self.batch_size, momentum=float(inner.momentum),
                decoupled_weight_decay=float(inner.weight_decay or 0.0))


class MomentumDiagnostic(EpochDiagnostic):
    """Seed 001 eqs. 3 and 4 (conventions in `momentum`'s docstring).

    At the end of a measured epoch: records a snapshot (x_t, v_t) (written in the background), and every
    `probe_every` epochs (and at the last) logs `momentum_scale` r_t (∇f on the probe examples: a gradient per
    example, as a training step, so on short epochs it is measured less often than the snapshots are taken). At
    the end of training: the alignment s_t of every snapshot against the final weights goes to
    `momentum_alignment.json` and to TensorBoard (`epoch_momentum_alignment`, step = 0-based epoch).

    It needs Keras SGD with momentum > 0 (a heavy-ball buffer) on one replica: otherwise `fit` stops when training
    starts with a one-line ValueError saying so, or, with `skip_unsupported` (a trainer whose phases change the
    optimizer, e.g. Adam then SGD), such epochs are skipped and a one-line message says so once.
    """

    ALIGNMENT_FILE = "momentum_alignment.json"

    def __init__(self, *, probe_examples, chunk_size: int, probe_every: int | None = None,
                 snapshot_dir: str | os.PathLike | None = None, skip_unsupported: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.skip_unsupported = skip_unsupported
        if probe_every is not None and probe_every < 1:
            raise ValueError(f"probe_every must be a positive number of epochs, got {probe_every}")
        self._probe_source = probe_examples  # (x, y) arrays or a callable returning them
        self.probe_every = probe_every or self.every
        self.chunk_size = chunk_size
        self.store = momentum.SnapshotStore(snapshot_dir, background=self.output.background)
        self.alignment: list[dict] = []
        # Per optimizer (one per phase), kept across fit calls; the optimizer is kept too, so that its id is not reused.
        self._probes: dict[int, tuple[keras.optimizers.Optimizer, momentum.ProbeGradient, Callable]] = {}
        self._warned = self._announced = False

    def build(self):
        self._probes.clear()
        if callable(self._probe_source):
            self._probe_source = self._probe_source()
        self._probe_source = tuple(tf.convert_to_tensor(a) for a in self._probe_source)
        self._variables = list(self.model.trainable_variables)
        self._flat_weights = momentum.make_device_flatten(self._variables)
        if self.probe_every != self.every and not self._announced:
            print(f"momentum_scale is measured every {self.probe_every} epochs (and at the last): its probe "
                  f"gradient on {len(self._probe_source[1])} examples costs more than 1 % of training when measured "
                  "more often; momentum snapshots follow the diagnostics' own interval.", flush=True)
            self._announced = True

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.skip_unsupported:  # Fail now, not silently at the end of every epoch.
            self._check_supported(self.model.optimizer)

    def _check_supported(self, optimizer) -> None:
        if self.model.distribute_strategy.num_replicas_in_sync > 1:
            # The probe would run outside the strategy's replica context: not supported, so not measured.
            raise ValueError("the momentum probe runs on a single replica only")
        momentum.check_heavy_ball(optimizer)

    def _probe_for(self, optimizer) -> tuple[momentum.ProbeGradient, Callable] | None:
        key = id(optimizer)
        if key not in self._probes:
            try:
                self._check_supported(optimizer)
                buffers = momentum.heavy_ball_buffers(optimizer, self._variables)
            except ValueError as error:
                if not self._warned:
                    print(f"momentum diagnostic skipped: {error}", flush=True)
                    self._warned = True
                return None
            # The snapshot's weights and velocity come over in one device-to-host copy.
            self._probes[key] = (optimizer, momentum.ProbeGradient(self.model, buffers, chunk_size=self.chunk_size),
                                 momentum.make_device_flatten([*self._variables, *buffers]))
        return self._probes[key][1:]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self.is_measured(epoch):
            return
        optimizer = self.model.optimizer
        probe, flat_snapshot = self._probe_for(optimizer) or (None, None)
        if probe is None:
            return
        lr = last_step_learning_rate(optimizer, logs)
        if self.is_measured(epoch, self.probe_every):
            squared_velocity, squared_gradient = probe(*self._probe_source)
            logs["momentum_scale"] = math.sqrt(squared_velocity) / (lr * math.sqrt(squared_gradient))
        weights, velocity = np.split(flat_snapshot(), 2)
        self.store.add(momentum.MomentumSnapshot(epoch=epoch + 1, step=int(optimizer.iterations.numpy()),
                                                 learning_rate=lr, weights=weights, velocity=velocity))

    def on_train_end(self, logs=None):
        if self.store.epochs():
            self._write_alignment()
        super().on_train_end(logs)

    def _write_alignment(self) -> None:
        final = self._flat_weights()
        if not np.all(np.isfinite(final)):
            print("momentum alignment skipped: the final weights are not finite", flush=True)
            return
        self.alignment = momentum.alignment_series(self.store, final)
        self.output.write_json(self.ALIGNMENT_FILE, self.alignment)
        for record in self.alignment:
            if math.isfinite(record["alignment"]):
                self.output.scalars({"epoch_momentum_alignment": record["alignment"]}, step=record["epoch"] - 1)


class MarginDistribution(EpochDiagnostic):
    """Seed 000 A.1: first-order margins of a fixed set of training examples with the end-of-epoch weights.

    Logs `margin_q1`, `margin_median`, `margin_q3`, `margin_mean` (input space; `margin_<layer>_...` for each of
    `layer_names`), a TensorBoard histogram `margin/<space>` of all finite margins, and with `save_path` the
    per-example input-space margins before the inter-quartile cut (`np.save`; "{epoch}" in the path is replaced
    by the 1-based epoch, else the file holds the latest; hidden layers go to `<stem>_<layer>.npy` beside it).
    """

    SUMMARY_KEYS = ("q1", "median", "q3", "mean")

    def __init__(self, *, examples, layer_names: Sequence[str] = (), normalization: str = "total_variation",
                 batch_size: int = 256, save_path: str | os.PathLike | None = None, **kwargs):
        super().__init__(**kwargs)
        if normalization not in margins.NORMALIZATIONS:
            raise ValueError(f"unknown margin normalization {normalization!r}; valid: "
                             f"{', '.join(margins.NORMALIZATIONS)}")
        self._examples = examples  # (x, y) arrays or a callable returning them
        self.layer_names = tuple(layer_names)
        self.normalization = normalization
        self.batch_size = batch_size
        self.save_path = str(save_path) if save_path else None
        self.latest: dict[str, np.ndarray] = {}

    def build(self):
        if callable(self._examples):
            self._examples = self._examples()
        self._batch_fn = margins.make_margin_batch_fn(network_of(self.model), self.layer_names)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self.is_measured(epoch):
            return
        x, y = self._examples
        self.latest = margins.first_order_margins(
            network_of(self.model), x, y, layer_names=self.layer_names, normalization=self.normalization,
            batch_size=self.batch_size, batch_fn=self._batch_fn)
        for space, values in self.latest.items():
            prefix = "margin" if space == margins.INPUT_SPACE else f"margin_{space}"
            summary = margins.margin_summary(values)
            logs.update({f"{prefix}_{key}": summary[key] for key in self.SUMMARY_KEYS})
            finite = values[np.isfinite(values)]
            if finite.size:
                self.output.histogram(f"margin/{space}", finite, step=epoch)
        if self.save_path:
            self._save(epoch)

    def _save(self, epoch: int) -> None:
        path = Path(self.save_path.replace("{epoch}", str(epoch + 1)))
        path.parent.mkdir(parents=True, exist_ok=True)
        for space, values in self.latest.items():
            target = path if space == margins.INPUT_SPACE else path.with_name(f"{path.stem}_{space}{path.suffix}")
            np.save(target, values)
