"""`train_and_evaluate`: one run from a RunConfig to a run directory with metrics, history, checkpoints and export.

A run directory that already holds progress is resumed from its last checkpoint; one whose metrics.json
exists is complete and only reported. Either is refused when its flags.cfg or its data.json (the fingerprint of the
data it trained on) differs from what is given now. Because each epoch's data order and augmentation depend only on
(seed, epoch) and the checkpoint holds model and optimizer state, a resumed run ends with the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfregimes.base import keras_private
from tfregimes.base.background import BackgroundFiles
from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import write_atomically, write_json
from tfregimes.config import run_config as config_lib
from tfregimes.data import InvalidDatasetError, load_dataset
from tfregimes.diagnostics.adapters import diagnostic_callbacks
from tfregimes.models import ModelOptions, build_model
from tfregimes.models.decay import decay_variables
from tfregimes.optim import LARS
from tfregimes.optim.exploration import ExplorationSchedule
from tfregimes.optim.plateau import PlateauSchedule
from tfregimes.optim.state import base_optimizer
from tfregimes.steps import RegularizerWindow, build_regime_model, regularizer_options
from tfregimes.steps.plain import RegimeModel, is_multi_worker
from tfregimes.training import export, recording
from tfregimes.training.data_fit import check_batch_size, check_fits_data
from tfregimes.training.distribution import (
    is_chief,
    precision_policy,
    prepare_devices,
    shard_by_data,
    training_batches,
)
from tfregimes.training.exploration_controller import ExplorationController
from tfregimes.training.phases import (
    Phase,
    PhaseRecord,
    build_phase_optimizer,
    coupled_weight_decay,
    phases_from_config,
)
from tfregimes.training.plateau_controller import PlateauController
from tfregimes.training.run_claim import (
    RunConfigError,
    WallClock,
    claim_run_dir,
    discard_unstarted,
    given_run_dir,
    recorded_result,
    run_data_fingerprint,
)
from tfregimes.training.scoring import inference_evaluation
from tfregimes.training.target_stop import TrainingTarget, build_training_target, check_stop_settings


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
        margin_normalization=config.margin_normalization, save_margins=config.save_margins or None,
        skip_unsupported=True)  # A phase may train with Adam or LARS: its epochs have no momentum to measure.


def _exploration_controller(optimizer, config: config_lib.RunConfig
                            ) -> ExplorationController | PlateauController | None:
    """The callback that makes a run-time schedule's decisions (explore, plateau); None for the others."""
    schedule = keras_private.optimizer_schedule(base_optimizer(optimizer))  # The schedule it was built with.
    schedule = getattr(schedule, "after", schedule)  # Inside a warm-up.
    if isinstance(schedule, PlateauSchedule):
        return PlateauController(schedule, patience=config.plateau_patience, threshold=config.plateau_threshold)
    if not isinstance(schedule, ExplorationSchedule):
        return None
    return ExplorationController(schedule, window=config.flat_window, tolerance=config.flat_tolerance,
                                 extra_epochs=config.extra_exploration_epochs)


def _profile_batches(text: str) -> tuple[int, int] | int:
    if not text:
        return 0
    first, last = (int(part) for part in text.split(","))
    return (first, last)


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


def train_and_evaluate(config: config_lib.RunConfig, command: list[str] | None = None, *,
                       strategy: tf.distribute.Strategy | None = None) -> RunResult:
    """Trains (or resumes, or only reports) the run of `config`; returns its final metrics. `strategy`: the one the
    caller already made with `prepare_devices` (the CLI does, before its flag checks); else made here."""
    started = time.perf_counter()
    try:
        check_stop_settings(config.stop_at_train_loss, config.stop_at_train_accuracy, config.stop_check_every,
                            config.stop_check_examples)
    except ValueError as error:
        raise RunConfigError(str(error)) from None
    run_dir = given_run_dir(config)
    if run_dir is not None and (metrics := recorded_result(run_dir, config)) is not None:  # Before any data loads.
        return RunResult(run_dir, metrics, already_complete=True)

    check_fits_data(config)
    if strategy is None:
        strategy = prepare_devices(config.num_cpu_devices, config.strategy)  # Before anything touches a device.
    data = load_run_data(config)
    fingerprint = run_data_fingerprint(config)  # After loading: TFDS may have just prepared the data.
    check_batch_size(config, data.info.num_train)  # For sources that cannot tell their size before loading.
    run_dir, lock, created = claim_run_dir(config, is_chief(strategy))
    try:
        # Another process may have written the run while this one loaded its data.
        if lock is not None and (metrics := recorded_result(run_dir, config, fingerprint)) is not None:
            return RunResult(run_dir, metrics, already_complete=True)
        with precision_policy(config.precision), strategy.scope():
            return _train(config, data, fingerprint, run_dir, command, started)
    except BaseException:
        if created:  # A run that failed before it started (e.g. out of memory building the model) leaves nothing.
            discard_unstarted(run_dir)
        raise
    finally:
        if lock is not None:
            lock.release()


def load_run_data(config: config_lib.RunConfig):
    """The dataset of `config`, as the run sees it."""
    try:
        return load_dataset(config.dataset, data_dir=config.data_dir or None,
                            train_subset=config.train_subset or None, normalization=config.normalization,
                            seed=config.seed, svhn_extra=config.svhn_extra, download=config.download,
                            confusion_size=config.confusion_size, validation_split=config.validation_split)
    except InvalidDatasetError:  # Says which dataset and array itself.
        raise
    except ValueError as error:  # A subset or confusion set larger than the dataset holds.
        raise RunConfigError(f"--dataset={config.dataset}: {error}") from None


def seed_run(config: config_lib.RunConfig) -> None:
    """The same initial weights and, with --deterministic, the same kernels' results for the same seed."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def micro_batch_size(config: config_lib.RunConfig) -> int:
    """What one step sees: the (global) micro-batch of gradient accumulation."""
    return config.batch_size // config.grad_accum_steps


def epoch_callbacks(*, before_diagnostics: Sequence[keras.callbacks.Callback],
                    diagnostics: Sequence[keras.callbacks.Callback],
                    writers: Sequence[keras.callbacks.Callback]) -> list[keras.callbacks.Callback]:
    """The trainer's callback order: `EpochLogs` and the others in `before_diagnostics` first (the diagnostics read
    the learning rate it logs), the diagnostics, then the writers (TensorBoard, and EpochRecorder last, so that
    what it saves is the end-of-epoch state) that write what all of them added."""
    return [*before_diagnostics, *diagnostics, *writers]


@dataclasses.dataclass
class _Progress:
    """Where a run stands: the epoch it continues from, its history and the phase whose optimizer it holds."""
    initial_epoch: int
    history: list[dict[str, Any]]
    phase_record: PhaseRecord
    optimizer: keras.optimizers.Optimizer
    controller: ExplorationController | PlateauController | None
    wall_clock: WallClock  # The run's wall time over all its processes.
    target: TrainingTarget | None = None  # --stop_at_train_loss or --stop_at_train_accuracy.


def _start_or_resume(config, run_dir: RunDirectory, model: RegimeModel, phases: list[Phase], steps_per_epoch: int,
                     command, chief: bool, started: float, target: TrainingTarget | None,
                     fingerprint: dict[str, Any]) -> _Progress:
    run_dir.create()
    phase_record = PhaseRecord()
    progress, optimizer = None, None
    if run_dir.read_progress():
        # A checkpoint holds the optimizer of the phase that trained its last epoch: compiled with that one to load.
        progress, optimizer = load_newest_checkpoint(model, run_dir, phases, config, steps_per_epoch)
        phase_record.current = phases[progress["phase"]["index"]]
    else:
        phase_record.current = phases[0]
        optimizer = compile_for_phase(model, phase_record.current, config, steps_per_epoch)
    state = _Progress(int(progress["epochs_done"]) if progress else 0, [], phase_record, optimizer,
                      _exploration_controller(optimizer, config),
                      WallClock(float(progress.get("wall_seconds", 0.0)) if progress else 0.0, started),
                      target)
    if progress:
        state.history = run_dir.read_history()[:state.initial_epoch]
        if state.controller is not None and state.controller.name in progress:
            state.controller.restore(progress[state.controller.name])
        if state.target is not None and state.target.name in progress:  # Reached its target: stays stopped.
            state.target.restore(progress[state.target.name])
        print(f"Resuming {run_dir.root} after epoch {state.initial_epoch} of {config.epochs}.", flush=True)
        if chief:
            recording.purge_tensorboard_from(run_dir.tensorboard_dir, state.initial_epoch)
    elif chief:
        write_json(run_dir.data_path, fingerprint)  # Before flags.cfg, which marks a started run.
        write_atomically(run_dir.flags_path, config_lib.to_flagfile(config, command))
    if chief and not run_dir.data_path.exists():  # A run started before runs recorded their data.
        write_json(run_dir.data_path, fingerprint)
    return state


def _fit_phases(config, data, run_dir: RunDirectory, model: RegimeModel, phases: list[Phase], state: _Progress,
                steps_per_epoch: int, chief: bool, shard, records_files: BackgroundFiles
                ) -> tuple[recording.EpochLogs, recording.DivergenceMonitor]:
    """Fits each phase not yet done, with a fresh optimizer at each phase switch; stops at divergence. The run's
    records (checkpoints, history.csv, progress.json) are written by `records_files`, which the caller waits for."""
    epoch_logs = recording.EpochLogs()
    divergence = recording.DivergenceMonitor()
    tensorboard = recording.TensorBoard(
        log_dir=str(run_dir.tensorboard_dir) if chief else tempfile.mkdtemp(prefix="tfregimes-worker-"),
        profile_batch=_profile_batches(config.profile_batch))
    validation = shard(data.evaluation("test", config.eval_batch_size))
    diagnostics = run_diagnostics(config, data, run_dir.root / "diagnostics", run_dir.tensorboard_dir / "diagnostics")
    batch_size = micro_batch_size(config)
    targets = [state.target] if state.target else []
    # The workers of a cluster must checkpoint at the same epochs (their clocks differ): every epoch.
    checkpoint_every_secs = 0.0 if is_multi_worker(tf.distribute.get_strategy()) else config.checkpoint_every_secs
    for phase in phases:
        if state.target is not None and state.target.reached:
            break  # Reached in an earlier phase, or before the kill that this process resumes from.
        if state.initial_epoch >= phase.end_epoch:
            continue
        if phase is not state.phase_record.current:  # A phase switch: fresh optimizer state.
            state.phase_record.current = phase
            state.optimizer = compile_for_phase(model, phase, config, steps_per_epoch)
            state.controller = _exploration_controller(state.optimizer, config)
        controllers = [state.controller] if state.controller else []
        records = [state.phase_record, state.wall_clock, *controllers, *targets]
        recorder = recording.EpochRecorder(run_dir, state.history, records=records, divergence=divergence,
                                           is_chief=chief, before_progress=[d.wait_for_files for d in diagnostics],
                                           checkpoint_every_secs=checkpoint_every_secs, files=records_files)
        start = max(state.initial_epoch, phase.start_epoch)
        model.fit(training_batches(tf.distribute.get_strategy(), data, batch_size, seed=config.seed,
                                   augment=config.augment, start_epoch=start, num_epochs=phase.end_epoch),
                  epochs=phase.end_epoch, initial_epoch=start, steps_per_epoch=steps_per_epoch,
                  validation_data=validation, validation_freq=config.eval_every,
                  callbacks=epoch_callbacks(
                      before_diagnostics=[*regularizer_window(config), epoch_logs, divergence, *controllers,
                                          *targets],
                      diagnostics=diagnostics, writers=[tensorboard, recorder]),
                  verbose=config.verbose, shuffle=False)  # Each epoch's order is already set by (seed, epoch).
        if divergence.diverged:
            break
    return epoch_logs, divergence


def _final_metrics(config, data, model: RegimeModel, state: _Progress, epoch_logs: recording.EpochLogs,
                   divergence: recording.DivergenceMonitor, steps_per_epoch: int) -> dict[str, Any]:
    """metrics.json: the final loss and accuracy of both splits (None after divergence), and what the run took."""
    history = state.history
    metrics = {"dataset": config.dataset, "model": config.model, "epochs": config.epochs,
               "epochs_run": len(history), "resumed_from_epoch": state.initial_epoch,
               "diverged": divergence.diverged, "diverged_at": divergence.diverged_at}
    # With a confusion set, train_* are on the training subset alone (seed 004 §7.1) and confusion_* on the set.
    evaluate = inference_evaluation(model)
    extra = (("confusion",) if data.info.num_confusion else ()) + (("validation",) if data.info.num_validation else ())
    for split in ("train", "test", *extra):
        if divergence.diverged:
            metrics[f"{split}_loss"] = metrics[f"{split}_accuracy"] = None
        else:
            result = evaluate(data.evaluation(split, config.eval_batch_size))
            metrics[f"{split}_loss"], metrics[f"{split}_accuracy"] = result["loss"], result["accuracy"]
    # Timings of the whole run, over every process of a resumed one: history.csv holds each epoch's training time,
    # progress.json the wall time up to its epoch.
    train_seconds = sum(row.get("train_seconds") or 0.0 for row in history)
    metrics.update({
        "last_epoch_train_loss": history[-1].get("loss") if history else None,
        "num_train": data.info.num_train, "num_test": data.info.num_test, "num_confusion": data.info.num_confusion,
        "num_validation": data.info.num_validation,
        "train_seconds": train_seconds,
        "images_per_second": (len(history) * steps_per_epoch * micro_batch_size(config) / train_seconds
                              if train_seconds > 0 else None),
    })
    metrics["stop"] = state.target.metrics() if state.target is not None else None
    if state.controller is not None:
        metrics[state.controller.name] = {k: v for k, v in state.controller.state().items() if k != "losses"}
    return metrics


def _train(config: config_lib.RunConfig, data, fingerprint: dict[str, Any], run_dir: RunDirectory, command,
           started: float) -> RunResult:
    seed_run(config)
    steps_per_epoch = data.steps_per_epoch(micro_batch_size(config))
    phases = phases_from_config(config)
    model = build_network_and_wrapper(config, data.info.input_shape, data.info.num_classes)
    strategy = tf.distribute.get_strategy()
    chief = is_chief(strategy)  # Only the chief writes; other workers of a cluster only compute.
    shard = shard_by_data if is_multi_worker(strategy) else (lambda dataset: dataset)
    state = _start_or_resume(config, run_dir, model, phases, steps_per_epoch, command, chief, started,
                             build_training_target(config, model, data), fingerprint)
    # One thread writes the records of every phase in order; the last phase's are written while the run evaluates.
    records_files = BackgroundFiles("run-records")
    try:
        epoch_logs, divergence = _fit_phases(config, data, run_dir, model, phases, state, steps_per_epoch, chief,
                                             shard, records_files)
        metrics = _final_metrics(config, data, model, state, epoch_logs, divergence, steps_per_epoch)
    finally:
        records_files.wait()  # Raises what writing raised: a run whose checkpoint failed does not end as done.
    if not divergence.diverged:
        # Every worker of a cluster exports (its reads of distributed variables are collectives); only the chief
        # keeps the result.
        if chief:
            export_model(model.network, run_dir, data)
        else:
            with tempfile.TemporaryDirectory(prefix="tfregimes-worker-") as scratch:
                export_model(model.network, RunDirectory(scratch), data)
    metrics["wall_seconds"] = state.wall_clock.state()
    metrics["wall_seconds_this_process"] = time.perf_counter() - started
    metrics["run_dir"] = str(run_dir.root)
    metrics["data"] = fingerprint
    if chief:
        write_json(run_dir.metrics_path, metrics)
    return RunResult(run_dir, metrics)


def export_model(network: keras.Model, run_dir: RunDirectory, data) -> None:
    """A SavedModel with a serving signature (Keras `export`) and the `.keras` file, beside each other; both take
    the inputs before normalization and carry the run's normalization (tfregimes.training.export)."""
    export.export_model(network, run_dir.export_dir, input_shape=data.info.input_shape,
                        normalization=data.info.normalization, stats=data.stats)
