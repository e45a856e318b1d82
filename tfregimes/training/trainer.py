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
from tfregimes import export
from tfregimes.data import load_dataset
from tfregimes.diagnostics.training import diagnostic_callbacks
from tfregimes.evaluation import evaluate_classifier
from tfregimes.models import ModelOptions, build_model
from tfregimes.models.decay import decay_variables
from tfregimes.optim.exploration import ExplorationSchedule
from tfregimes.training import callbacks as callbacks_lib
from tfregimes.training.distribution import is_chief, make_strategy, precision_policy, shard_by_data, split_cpu
from tfregimes.training.exploration import ExplorationController
from tfregimes.training.phases import (Phase, PhaseRecord, build_phase_optimizer, coupled_weight_decay,
                                       phases_from_config)
from tfregimes.training.run_dir import RunDirectory, RunLock, read_json, write_atomically, write_json
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
            f"{run_dir.root} holds a run started with other flags ({'; '.join(differences)}). Resume it with: "
            f"python -m tfregimes.train --flagfile={run_dir.flags_path} --model_dir={run_dir.root} (or start a new "
            "run with another --model_dir).")


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
    model.compile(optimizer=build_phase_optimizer(phase, config, steps_per_epoch),
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


class WallClock:
    """The run's wall time over all its processes, kept in progress.json (an EpochRecorder record)."""

    name = "wall_seconds"

    def __init__(self, before: float, started: float):
        self.before, self.started = before, started  # Earlier processes' time; this one's start.

    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {}

    def state(self) -> float:
        return self.before + time.perf_counter() - self.started


def load_newest_checkpoint(model: RegimeModel, run_dir: RunDirectory, phases: list[Phase],
                           config: config_lib.RunConfig, steps_per_epoch: int):
    """Loads the newest checkpoint progress.json names that verifies against its checksum and loads, compiling
    the model with the optimizer of the phase it was saved in (the checkpoint holds that optimizer's state);
    says so when it had to skip a damaged one. Returns (its progress entry, the optimizer)."""
    problems = []
    for entry in run_dir.resume_candidates(run_dir.read_progress()):
        problem = run_dir.checkpoint_problem(entry)
        if problem is None:
            optimizer = compile_for_phase(model, phases[entry["phase"]["index"]], config, steps_per_epoch)
            try:
                model.load_weights(str(run_dir.checkpoint_dir / entry["checkpoint"]))
            except (OSError, ValueError, KeyError) as error:  # h5py's OSError for a truncated file, among others
                problem = f"checkpoints/{entry['checkpoint']} is damaged ({str(error).splitlines()[0]})"
        if problem is None:
            if problems:
                print(f"{run_dir.root}: {'; '.join(problems)}: resuming from {entry['checkpoint']} (after epoch "
                      f"{entry['epochs_done']}) instead.", flush=True)
            return entry, optimizer
        problems.append(problem)
    raise RunConfigError(f"no checkpoint of {run_dir.root} verifies or loads ({'; '.join(problems)}); start over "
                         "with another --model_dir (or remove progress.json and checkpoints/).")


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
    if config.batch_size > data.info.num_train:
        subset = " (--train_subset)" if config.train_subset else ""
        raise RunConfigError(f"--batch_size={config.batch_size} exceeds the {data.info.num_train} training examples "
                             f"of {config.dataset}{subset}; training drops the last partial batch, so no step would "
                             f"run. Use --batch_size of at most {data.info.num_train}.")
    run_dir, lock = claim_run_dir(run_dir, config, is_chief(strategy))
    try:
        if lock is not None:  # Another process may have written the run while this one loaded its data.
            check_same_flags(run_dir, config)
            if run_dir.metrics_path.exists():
                return RunResult(run_dir, read_json(run_dir.metrics_path), already_complete=True)
        with precision_policy(config.precision), strategy.scope():
            return _train(config, data, run_dir, command, started)
    finally:
        if lock is not None:
            lock.release()


def claim_run_dir(run_dir: RunDirectory, config: config_lib.RunConfig, chief: bool
                  ) -> tuple[RunDirectory, RunLock | None]:
    """The chief claims the run directory (a fresh default one, or --model_dir) and holds its lock until the run
    ends; other workers of a cluster write nothing there and take no lock."""
    if not chief:
        return run_dir, None
    if not config.model_dir:
        run_dir = RunDirectory.claim_default(config.dataset, config.model)
    lock = run_dir.lock()
    if lock.took_over_from is not None:
        print(f"Taking over {run_dir.root} from process {lock.took_over_from}, which ended without releasing it.",
              flush=True)
    return run_dir, lock


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
    phase_record = PhaseRecord()
    progress = None
    if run_dir.read_progress():
        progress, optimizer = load_newest_checkpoint(model, run_dir, phases, config, steps_per_epoch)
        phase_record.current = phases[progress["phase"]["index"]]
    else:
        phase_record.current = phases[0]
        optimizer = compile_for_phase(model, phase_record.current, config, steps_per_epoch)
    initial_epoch = int(progress["epochs_done"]) if progress else 0
    controller = _exploration_controller(optimizer, config)
    history: list[dict[str, Any]] = []
    if progress:
        history = run_dir.read_history()[:initial_epoch]
        if controller is not None and "exploration" in progress:
            controller.restore(progress["exploration"])
        print(f"Resuming {run_dir.root} after epoch {initial_epoch} of {config.epochs}.", flush=True)
        if chief:
            callbacks_lib.purge_tensorboard_from(run_dir.tensorboard_dir, initial_epoch)
    else:
        if chief:
            write_atomically(run_dir.flags_path, config_lib.to_flagfile(config, command))

    wall_clock = WallClock(float(progress.get("wall_seconds", 0.0)) if progress else 0.0, started)
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
        records = [phase_record, wall_clock] + ([controller] if controller else [])
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
    # Timings of the whole run, over every process of a resumed one: history.csv holds each epoch's training time,
    # progress.json the wall time up to its epoch.
    train_seconds = sum(row.get("train_seconds") or 0.0 for row in history)
    metrics.update({
        "last_epoch_train_loss": history[-1].get("loss") if history else None,
        "num_train": data.info.num_train, "num_test": data.info.num_test,
        "train_seconds": train_seconds,
        "images_per_second": (len(history) * steps_per_epoch * batch_size / train_seconds
                              if train_seconds > 0 else None),
    })
    if controller is not None:
        metrics["exploration"] = {k: v for k, v in controller.state().items() if k != "losses"}
    if not divergence.diverged:
        # Every worker of a cluster exports (its reads of distributed variables are collectives); only the chief
        # keeps the result.
        if chief:
            export_model(model.network, run_dir, data)
        else:
            with tempfile.TemporaryDirectory(prefix="tfregimes-worker-") as scratch:
                export_model(model.network, RunDirectory(scratch), data)
    metrics["wall_seconds"] = wall_clock.state()
    metrics["wall_seconds_this_process"] = time.perf_counter() - started
    metrics["run_dir"] = str(run_dir.root)
    if chief:
        write_json(run_dir.metrics_path, metrics)
    return RunResult(run_dir, metrics)


def export_model(network: keras.Model, run_dir: RunDirectory, data) -> None:
    """A SavedModel with a serving signature (Keras `export`) and the `.keras` file, beside each other; both take
    the inputs before normalization and carry the run's normalization (tfregimes.export)."""
    export.export_model(network, run_dir.export_dir, input_shape=data.info.input_shape,
                        normalization=data.info.normalization, stats=data.stats)
