"""`train_and_evaluate`: one run from a RunConfig to a run directory with metrics, history, checkpoints and export.

A run directory that already holds progress is resumed from its last completed epoch; one whose metrics.json
exists is complete and only reported. Because each epoch's data order and augmentation depend only on
(seed, epoch) and the checkpoint holds model and optimizer state, a resumed run ends with the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import tensorflow as tf

from tfregimes import config as config_lib
from tfregimes.data import load_dataset
from tfregimes.diagnostics.training import diagnostic_callbacks
from tfregimes.evaluation import evaluate_classifier
from tfregimes.models import ModelOptions, build_model
from tfregimes.models.decay import decay_variables
from tfregimes.optim import LARS
from tfregimes.optim.exploration import ExplorationSchedule
from tfregimes.training import callbacks as callbacks_lib
from tfregimes.training.distribution import is_chief, make_strategy, precision_policy, shard_by_data, split_cpu
from tfregimes.training.exploration import ExplorationController
from tfregimes.training.phases import (Phase, PhaseRecord, build_phase_optimizer, coupled_weight_decay,
                                       phases_from_config)
from tfregimes.training.run_dir import RunDirectory, read_json, write_atomically, write_json
from tfregimes.regimes import RegularizerWindow, build_regime_model, regularizer_options
from tfregimes.training.step import RegimeModel, is_multi_worker


class RunConfigError(ValueError):
    """Settings that cannot run; the message names the flag."""


class RunConfigMismatch(RunConfigError):
    """An existing run directory was started with other flags than the ones given now."""


@dataclasses.dataclass
class RunResult:
    run_dir: RunDirectory
    metrics: dict[str, Any]
    already_complete: bool = False


def model_options(config: config_lib.RunConfig) -> ModelOptions:
    """The model zoo's options, taken from the config fields of the same names."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(ModelOptions)}
    values["ghost_batch_size"] = config.ghost_batch_size or None
    return ModelOptions(**values)


def resolve_run_dir(config: config_lib.RunConfig) -> RunDirectory:
    if config.model_dir:
        return RunDirectory(config.model_dir)
    return RunDirectory.new_default(config.dataset, config.model)


def check_same_flags(run_dir: RunDirectory, config: config_lib.RunConfig) -> None:
    """Refuses to resume a run directory whose recorded flags differ from `config` (presentation flags aside)."""
    if not run_dir.flags_path.exists():
        return
    recorded = config_lib.parse_flagfile_values(run_dir.flags_path.read_text())
    differences = []
    for name in config_lib.field_names():
        if name in config_lib.PRESENTATION_FIELDS or name not in recorded:
            continue
        given = config_lib.format_flag_value(getattr(config, name))
        if recorded[name] != given:
            differences.append(f"--{name}: recorded {recorded[name]!r}, given {given!r}")
    if differences:
        raise RunConfigMismatch(
            f"{run_dir.root} holds a run started with other flags ({'; '.join(differences)}). Resume it with "
            f"--flagfile={run_dir.flags_path}, or start a new run with another --model_dir.")


def build_network_and_wrapper(config: config_lib.RunConfig, input_shape: Sequence[int],
                              num_classes: int) -> RegimeModel:
    try:
        network = build_model(config.model, input_shape=tuple(input_shape), num_classes=num_classes,
                              options=model_options(config))
    except ValueError as error:  # e.g. an option the model does not use, or an input it cannot take.
        raise RunConfigError(f"--model={config.model} on {config.dataset}: {error}") from None
    model = build_regime_model(config.regularizer, network, weight_decay=config.weight_decay,
                               decay_variables=decay_variables(network, config.weight_decay_scope),
                               **regularizer_arguments(config))
    model(tf.zeros((1, *input_shape)), training=False)
    return model


def regularizer_arguments(config: config_lib.RunConfig) -> dict[str, Any]:
    """The options of `config.regularizer`, from the config fields of the same names."""
    return {name: getattr(config, name) for name in regularizer_options(config.regularizer)}


def regularizer_window(config: config_lib.RunConfig) -> list[keras.callbacks.Callback]:
    if config.regularizer == "none":
        return []
    return [RegularizerWindow(config.regularizer_start_epoch, config.regularizer_end_epoch or None)]


def compile_for_phase(model: RegimeModel, phase: Phase, config: config_lib.RunConfig,
                      steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """(Re)compiles `model` with a fresh optimizer and schedule for `phase`; returns the optimizer."""
    model.weight_decay = coupled_weight_decay(phase, config)
    model.global_clipnorm = config.global_clipnorm
    # Conservative training makes K optimizer steps per batch; its schedule counts them, so epochs stay epochs.
    optimizer_steps = steps_per_epoch * getattr(model, "optimizer_steps_per_batch", 1)
    optimizer = build_phase_optimizer(phase, config, optimizer_steps)
    if isinstance(optimizer, LARS):  # LARS decays inside its update: the variables of --weight_decay_scope.
        optimizer.decay_only(model.decay_variables)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=config.jit_compile)
    # compile wraps the optimizer in a LossScaleOptimizer under mixed_float16; build it so that a checkpoint's
    # optimizer state has somewhere to go.
    model.optimizer.build(model.trainable_variables)
    return model.optimizer


def run_diagnostics(config: config_lib.RunConfig, data, output_dir: Path, tensorboard_dir: Path
                    ) -> list[keras.callbacks.Callback]:
    """The training diagnostics of `config` (`--diagnostics` and their flags) as callbacks, writing to the two
    directories (the run's `diagnostics/` and `tensorboard/diagnostics/`)."""
    return diagnostic_callbacks(
        config.diagnostics, every=config.diagnostics_every, num_train=data.info.num_train,
        batch_size=config.batch_size, train_examples=data.evaluation("train", config.eval_batch_size),
        output_dir=output_dir, tensorboard_dir=tensorboard_dir, scale_invariant_only=config.scale_invariant_only,
        probe_examples=config.momentum_probe_examples or None, margin_samples=config.margin_samples,
        margin_normalization=config.margin_normalization, save_margins=config.save_margins or None)


def _exploration_controller(optimizer, config: config_lib.RunConfig) -> ExplorationController | None:
    schedule = callbacks_lib.base_optimizer(optimizer)._learning_rate  # The schedule it was built with.
    schedule = getattr(schedule, "after", schedule)  # Inside a warm-up.
    if not isinstance(schedule, ExplorationSchedule):
        return None
    return ExplorationController(schedule, window=config.flat_window, tolerance=config.flat_tolerance,
                                 extra_epochs=config.extra_exploration_epochs)


def _profile_batches(text: str) -> tuple[int, int] | int:
    if not text:
        return 0
    first, last = (int(part) for part in text.split(","))
    return (first, last)


def train_and_evaluate(config: config_lib.RunConfig, command: list[str] | None = None) -> RunResult:
    """Trains (or resumes, or only reports) the run of `config`; returns its final metrics."""
    started = time.perf_counter()
    run_dir = resolve_run_dir(config)
    check_same_flags(run_dir, config)
    if run_dir.metrics_path.exists():
        return RunResult(run_dir, read_json(run_dir.metrics_path), already_complete=True)

    split_cpu(config.num_cpu_devices)  # Before anything touches a device.
    strategy = make_strategy(config.strategy)
    data = load_dataset(config.dataset, data_dir=config.data_dir or None, train_subset=config.train_subset or None,
                        normalization=config.normalization, seed=config.seed, svhn_extra=config.svhn_extra,
                        download=config.download)
    with precision_policy(config.precision), strategy.scope():
        return _train(config, data, run_dir, command, started)


def _train(config: config_lib.RunConfig, data, run_dir: RunDirectory, command, started: float) -> RunResult:
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    batch_size = config.batch_size // config.grad_accum_steps  # What one step sees: the (global) micro-batch.
    steps_per_epoch = data.steps_per_epoch(batch_size)
    phases = phases_from_config(config)
    model = build_network_and_wrapper(config, data.info.input_shape, data.info.num_classes)

    strategy = tf.distribute.get_strategy()
    chief = is_chief(strategy)  # Only the chief writes; other workers of a cluster only compute.
    shard = shard_by_data if is_multi_worker(strategy) else (lambda dataset: dataset)
    run_dir.create()
    progress = run_dir.read_progress()
    initial_epoch = int(progress["epochs_done"]) if progress else 0
    phase_record = PhaseRecord()
    # A checkpoint holds the optimizer of the phase that trained its last epoch: compile with that one to load it.
    phase_record.current = phases[progress["phase"]["index"]] if progress else phases[0]
    optimizer = compile_for_phase(model, phase_record.current, config, steps_per_epoch)
    controller = _exploration_controller(optimizer, config)
    history: list[dict[str, Any]] = []
    if progress:
        model.load_weights(str(run_dir.checkpoint_dir / progress["checkpoint"]))
        history = run_dir.read_history()[:initial_epoch]
        if controller is not None and "exploration" in progress:
            controller.restore(progress["exploration"])
        print(f"Resuming {run_dir.root} after epoch {initial_epoch} of {config.epochs}.", flush=True)
    else:
        if chief:
            write_atomically(run_dir.flags_path, config_lib.to_flagfile(config, command))

    epoch_logs = callbacks_lib.EpochLogs()
    divergence = callbacks_lib.DivergenceMonitor()
    tensorboard = callbacks_lib.TensorBoard(
        log_dir=str(run_dir.tensorboard_dir) if chief else tempfile.mkdtemp(prefix="tfregimes-worker-"),
        profile_batch=_profile_batches(config.profile_batch))
    validation = shard(data.evaluation("test", config.eval_batch_size))
    diagnostics = run_diagnostics(config, data, run_dir.root / "diagnostics", run_dir.tensorboard_dir / "diagnostics")
    for phase in phases:
        if initial_epoch >= phase.end_epoch:
            continue
        if phase is not phase_record.current:  # A phase switch: fresh optimizer state.
            phase_record.current = phase
            optimizer = compile_for_phase(model, phase, config, steps_per_epoch)
            controller = _exploration_controller(optimizer, config)
        records = [phase_record] + ([controller] if controller else [])
        recorder = callbacks_lib.EpochRecorder(run_dir, history, records=records, divergence=divergence,
                                               is_chief=chief, before_progress=[d.wait_for_files for d in diagnostics])
        start = max(initial_epoch, phase.start_epoch)
        model.fit(shard(data.train(batch_size, seed=config.seed, augment=config.augment,
                                   start_epoch=start, num_epochs=phase.end_epoch)),
                  epochs=phase.end_epoch, initial_epoch=start, steps_per_epoch=steps_per_epoch,
                  validation_data=validation, validation_freq=config.eval_every,
                  # Diagnostics read EpochLogs' learning rate; TensorBoard and EpochRecorder write what all add.
                  callbacks=[*regularizer_window(config), epoch_logs, divergence,
                             *([controller] if controller else []), *diagnostics, tensorboard, recorder],
                  verbose=config.verbose, shuffle=False)  # Each epoch's order is already set by (seed, epoch).
        if divergence.diverged:
            break

    metrics = {"dataset": config.dataset, "model": config.model, "epochs": config.epochs,
               "epochs_run": len(history), "resumed_from_epoch": initial_epoch,
               "diverged": divergence.diverged, "diverged_at": divergence.diverged_at}
    if divergence.diverged:
        for split in ("train", "test"):
            metrics[f"{split}_loss"] = metrics[f"{split}_accuracy"] = None
    else:
        def logits_fn(images):
            return model(images, training=False)
        for split in ("train", "test"):
            result = evaluate_classifier(logits_fn, data.evaluation(split, config.eval_batch_size))
            metrics[f"{split}_loss"], metrics[f"{split}_accuracy"] = result["loss"], result["accuracy"]
    epochs_this_process = len(history) - initial_epoch
    train_seconds = epoch_logs.train_seconds_total
    metrics.update({
        "last_epoch_train_loss": history[-1].get("loss") if history else None,
        "num_train": data.info.num_train, "num_test": data.info.num_test,
        "train_seconds": train_seconds,
        "images_per_second": (epochs_this_process * steps_per_epoch * batch_size / train_seconds
                              if train_seconds > 0 else None),
    })
    if controller is not None:
        metrics["exploration"] = {k: v for k, v in controller.state().items() if k != "losses"}
    if not divergence.diverged:
        # Every worker of a cluster exports (its reads of distributed variables are collectives); only the chief
        # keeps the result.
        if chief:
            export_model(model.network, run_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="tfregimes-worker-") as scratch:
                export_model(model.network, RunDirectory(scratch))
    metrics["wall_seconds"] = time.perf_counter() - started
    metrics["run_dir"] = str(run_dir.root)
    if chief:
        write_json(run_dir.metrics_path, metrics)
    return RunResult(run_dir, metrics)


def export_model(network: keras.Model, run_dir: RunDirectory) -> None:
    """A SavedModel with a serving signature (Keras `export`) and the `.keras` file, beside each other."""
    run_dir.export_dir.mkdir(parents=True, exist_ok=True)
    network.export(str(run_dir.saved_model_dir), format="tf_saved_model", verbose=False)
    network.save(str(run_dir.keras_model_path))
