"""Per-epoch cost of the training-time diagnostics: `python -m tfregimes.benchmark --suite=diagnostics`.

Two variants of the default training job (`RunConfig()`, unless told otherwise) are trained in one process, built
by the trainer's own functions from the same seed (same initial weights, same data order): "plain", with the
trainer's callbacks (`EpochLogs`, `DivergenceMonitor` and, with `trainer_epoch`, the test-split evaluation,
TensorBoard and the `EpochRecorder`'s checkpoint, all writing into a temporary directory, removed afterwards), and
"diagnostics", which adds the diagnostics as the trainer builds them (`trainer.run_diagnostics`). Either way each
epoch waits for the diagnostics' background writes, as the trainer does before progress.json.

Method:
- An epoch is timed from a callback first in the list (`on_epoch_begin`) to one last in it (`on_epoch_end`), so
  it includes the diagnostics' epoch-boundary work and Keras' wait for the epoch's last step; with `trainer_epoch`
  (the default) it is the trainer's whole epoch, what a user waits for; without, the training alone, the strictest
  share. Two more callbacks around the diagnostics time what is spent inside them (`callback_ms`): a far less noisy
  figure than the difference of two epoch times, which on a shared machine varies by ±10 % from round to round.
- Warm-up: each variant first fits one untimed epoch; its time minus plain's is `first_epoch_extra_ms`, the one-off
  cost of tracing the diagnostics' functions and reading the probe examples. A discarded model fits one epoch
  before both, so that process-wide first-use costs (kernel caches, thread pools) land on neither.
- Each of `rounds` rounds fits plain, then diagnostics, each for one untimed lead epoch and then `epochs` timed
  ones, continuing its own training. The diagnostics measure every `every` epochs (the momentum scale, on short
  epochs, less often): their pattern repeats every `measurement_period` epochs P, and `epochs` is a multiple of P.
  Both variants read the same epoch numbers, chosen so that the lead epoch is one that all diagnostics measure
  (it absorbs what a fit's start costs) and the timed epochs hold whole periods. Work a measured epoch leaves
  running in the background (file writes) costs in the next epoch: the lead epoch's lands in the first timed one,
  the last timed epoch's after the fit, so the timed epochs bear it once per measurement, as in a run. Fits are
  told a horizon they never reach (they are stopped), so the diagnostics' "measure the last epoch too" rule never
  adds a measurement.
- A round's value is its mean epoch (with `every` > 1 a median would skip the measured epochs); the overhead is
  the median over rounds of (diagnostics round / plain round − 1), in percent: the two fits of a round run within
  seconds of each other, so a change in the load of a shared machine touches both alike. `epoch_ms` is the median
  of a variant's timed epochs.
- The stop at a training target (`--stop_at_train_loss` / `--stop_at_train_accuracy`) costs one check per checked
  epoch: an inference pass over at most `--stop_check_examples` (default 10,000) clean training examples. It is
  built as the trainer builds it (`target_stop.build_training_target`) on plain's trained model and timed alone after
  the rounds: its first call (tracing) and then `rounds` calls, whose median is `stop_check.check_ms`, also given as a
  share of plain's median epoch (the cost per epoch with `--stop_check_every=1`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from tfregimes.base.registry import UnknownNameError
from tfregimes.base.run_dir import RunDirectory
from tfregimes.config.run_config import RunConfig
from tfregimes.diagnostics.adapters.training_diagnostics import parse_names
from tfregimes.training import recording
from tfregimes.training.distribution import precision_policy
from tfregimes.training.phases import phases_from_config
from tfregimes.training.target_stop import build_training_target
from tfregimes.training.trainer import (
    build_network_and_wrapper,
    compile_for_phase,
    epoch_callbacks,
    load_run_data,
    micro_batch_size,
    run_diagnostics,
    seed_run,
)

_RUN = RunConfig()
DEFAULT_DIAGNOSTICS = ("angular", "elr", "momentum")
DEFAULT_EPOCHS = 3  # Timed epochs per fit, rounded up to a multiple of `measurement_period`.


class SettingError(ValueError):
    """A `DiagnosticsSetting` that cannot be timed; the message says why."""


@dataclasses.dataclass(frozen=True)
class DiagnosticsSetting:
    """The job whose epochs are timed: `RunConfig()` with these fields replaced, and the timing plan."""

    dataset: str = _RUN.dataset
    model: str = _RUN.model
    batch_size: int = _RUN.batch_size
    seed: int = _RUN.seed
    train_subset: int = _RUN.train_subset  # 0: the whole training split.
    diagnostics: tuple[str, ...] = DEFAULT_DIAGNOSTICS
    every: int = 1  # --diagnostics_every
    epochs: int = 0  # Timed epochs per fit; 0: DEFAULT_EPOCHS rounded up to a multiple of `measurement_period`.
    rounds: int = 20  # The default job's epochs are short (0.2 s on 2 CPU cores): many rounds, less noise.
    trainer_epoch: bool = True  # The trainer's whole epoch (validation, TensorBoard, checkpoint); False: training.

    def resolved(self) -> DiagnosticsSetting:
        """Checked, with the diagnostics' names parsed (`epochs` is resolved once the diagnostics are built)."""
        try:
            names = tuple(parse_names(self.diagnostics))
        except UnknownNameError as error:  # It lists the valid names.
            raise SettingError(str(error)) from None
        if not names:
            raise SettingError("no diagnostics to time")
        if min(self.every, self.rounds, self.batch_size) < 1 or self.epochs < 0:
            raise SettingError("every, rounds and batch_size must be >= 1 and epochs >= 0")
        return dataclasses.replace(self, diagnostics=names)

    def run_config(self) -> RunConfig:
        return _RUN.replace(dataset=self.dataset, model=self.model, batch_size=self.batch_size, seed=self.seed,
                            train_subset=self.train_subset, diagnostics=self.diagnostics,
                            diagnostics_every=self.every)


@dataclasses.dataclass
class DiagnosticsTiming:
    setting: DiagnosticsSetting  # Resolved.
    steps_per_epoch: int
    period: int  # `measurement_period` of the diagnostics.
    first_epoch_ms: dict[str, float]  # Variant -> its warm-up epoch.
    round_epoch_ms: dict[str, list[list[float]]]  # Variant -> each round's timed epochs.
    round_callback_ms: list[list[float]]  # Each round's timed epochs: the time inside the diagnostics' callbacks.
    stop_check_first_ms: float = math.nan  # The stop's first check (tracing included).
    stop_check_ms: list[float] = dataclasses.field(default_factory=list)  # Its later checks.
    stop_check_examples: int = 0  # The clean training examples one check reads.

    def round_ms(self, variant: str) -> list[float]:
        return [float(np.mean(epochs)) for epochs in self.round_epoch_ms[variant]]

    def round_ratios(self) -> list[float]:
        return [d / p for d, p in zip(self.round_ms("diagnostics"), self.round_ms("plain"))]

    def epoch_ms(self, variant: str) -> float:
        return float(np.median(np.concatenate(self.round_epoch_ms[variant])))

    @property
    def overhead_percent(self) -> float:
        return 100.0 * (float(np.median(self.round_ratios())) - 1.0)

    @property
    def overhead_percent_iqr(self) -> tuple[float, float]:
        """The rounds' interquartile range: how far apart single rounds land (the noise of the machine)."""
        low, high = np.percentile(self.round_ratios(), [25, 75])
        return 100.0 * (float(low) - 1.0), 100.0 * (float(high) - 1.0)

    @property
    def callback_ms(self) -> float:
        """Mean time per epoch inside the diagnostics' epoch hooks (over whole measurement periods): what they cost
        with little noise, leaving out only work they leave running in the background."""
        return float(np.mean(np.concatenate(self.round_callback_ms)))

    @property
    def callback_percent(self) -> float:
        """`callback_ms` as a share of plain's median epoch."""
        return 100.0 * self.callback_ms / self.epoch_ms("plain")

    @property
    def stop_check_percent(self) -> float:
        """The median stop check as a share of plain's median epoch."""
        return 100.0 * float(np.median(self.stop_check_ms)) / self.epoch_ms("plain")

    @property
    def first_epoch_extra_ms(self) -> float:
        return self.first_epoch_ms["diagnostics"] - self.first_epoch_ms["plain"]


class _EpochClock:
    """Callbacks: `begin` (put first) starts an epoch's clock, `end` (put last) stops it and, after the fit's
    planned number of epochs, stops the fit; `enter` and `leave`, put around the diagnostics, add the time spent
    between them (in on_epoch_begin and on_epoch_end) to the epoch's `inside_ms`."""

    def __init__(self):
        self.epoch_ms: list[float] = []
        self.inside_ms: list[float] = []
        self.planned = 0
        clock = self

        class Begin(keras.callbacks.Callback):  # Epoch hooks only: a batch hook would make Keras wait every step.
            def on_epoch_begin(self, epoch, logs=None):
                clock._started, clock._inside = time.perf_counter(), 0.0

        class Enter(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock._entered = time.perf_counter()

            on_epoch_end = on_epoch_begin

        class Leave(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock._inside += time.perf_counter() - clock._entered

            on_epoch_end = on_epoch_begin

        class End(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                clock.epoch_ms.append(1000.0 * (time.perf_counter() - clock._started))
                clock.inside_ms.append(1000.0 * clock._inside)
                if len(clock.epoch_ms) >= clock.planned:
                    self.model.stop_training = True

        self.begin, self.enter, self.leave, self.end = Begin(), Enter(), Leave(), End()


def measurement_period(callbacks: list[keras.callbacks.Callback]) -> int:
    """Epochs after which the diagnostics' pattern of measured epochs repeats: the lcm of their intervals
    (`every`, and the momentum scale's `probe_every`, which on short epochs is a multiple of `every`)."""
    intervals = [getattr(c, name) for c in callbacks for name in ("every", "probe_every") if hasattr(c, name)]
    return math.lcm(1, *intervals)


def time_diagnostics(setting: DiagnosticsSetting, *, log=print) -> DiagnosticsTiming:
    """Trains and times both variants; see the module docstring for the method."""
    setting = setting.resolved()
    config = setting.run_config()
    data = load_run_data(config)
    batch_size = micro_batch_size(config)
    steps_per_epoch = data.steps_per_epoch(batch_size)
    phase = phases_from_config(config)[0]

    with tempfile.TemporaryDirectory(prefix="tfregimes-bench-") as scratch, precision_policy(config.precision):
        def build(names):
            seed_run(config)  # The same initial weights for every variant, and the trainer's kernels.
            model = build_network_and_wrapper(config, data.info.input_shape, data.info.num_classes)
            compile_for_phase(model, phase, config, steps_per_epoch)
            # The trainer's call (trainer._fit_phases), with its run directory replaced by the scratch directory.
            diagnostics = run_diagnostics(config.replace(diagnostics=names), data, Path(scratch) / "diagnostics",
                                          Path(scratch) / "tensorboard" / "diagnostics")
            clock = _EpochClock()
            wait_for_files = [d.wait_for_files for d in diagnostics]
            if setting.trainer_epoch:  # The trainer's TensorBoard and EpochRecorder (which waits for the files).
                run_dir = RunDirectory(Path(scratch) / f"run-{len(names)}-{id(model)}")
                run_dir.create()
                writers = [recording.TensorBoard(log_dir=str(run_dir.tensorboard_dir)),
                           recording.EpochRecorder(run_dir, [], before_progress=wait_for_files)]
            else:  # Still wait for the diagnostics' background writes each epoch, as the trainer does.
                writers = [keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda epoch, logs: [wait() for wait in wait_for_files])]
            # The trainer's order, with the clock's callbacks around the whole epoch and around the diagnostics.
            callbacks = epoch_callbacks(
                before_diagnostics=[clock.begin, recording.EpochLogs(), recording.DivergenceMonitor(), clock.enter],
                diagnostics=diagnostics, writers=[clock.leave, *writers, clock.end])
            return model, clock, callbacks

        primer = build(())
        variants = {"plain": build(()), "diagnostics": build(setting.diagnostics)}
        period = measurement_period(variants["diagnostics"][2])
        epochs = setting.epochs or period * -(-DEFAULT_EPOCHS // period)
        if epochs % period:
            raise SettingError(f"epochs ({epochs}) must be a multiple of {period}, the period of the diagnostics' "
                               "measured epochs, so that every round holds the same share of them")
        setting = dataclasses.replace(setting, epochs=epochs)
        stride = epochs + period  # A fit's lead epoch, its timed epochs, and unmeasured epochs skipped to realign.
        horizon = (setting.rounds + 2) * stride  # Beyond every epoch run: no "last epoch" measurement.

        validation = data.evaluation("test", config.eval_batch_size) if setting.trainer_epoch else None

        def fit(variant, first_epoch: int, epochs: int) -> tuple[list[float], list[float]]:
            model, clock, callbacks = variant
            clock.epoch_ms, clock.inside_ms, clock.planned = [], [], epochs
            # One epoch more than the fit runs: an epoch that ends the data is slower (by ~50 ms on digits).
            model.fit(data.train(batch_size, seed=config.seed, augment=config.augment, start_epoch=first_epoch,
                                 num_epochs=first_epoch + epochs + 1),
                      epochs=horizon, initial_epoch=first_epoch, steps_per_epoch=steps_per_epoch,
                      validation_data=validation, validation_freq=config.eval_every,
                      callbacks=callbacks, verbose=0, shuffle=False)
            if len(clock.epoch_ms) != epochs:
                raise RuntimeError(f"a fit ran {len(clock.epoch_ms)} epochs instead of {epochs} (did it diverge?)")
            return clock.epoch_ms, clock.inside_ms

        lead = period - 1  # A fit's first epoch is one that every diagnostic measures (0-based).
        fit(primer, lead, 1)  # Discarded.
        first = {name: fit(variant, lead, 1)[0][0] for name, variant in variants.items()}
        log("  first epochs: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in first.items()))
        rounds = {name: [] for name in variants}
        inside = []
        for round_index in range(1, setting.rounds + 1):
            for name, variant in variants.items():
                epoch_ms, inside_ms = fit(variant, round_index * stride + lead, 1 + epochs)
                rounds[name].append(epoch_ms[1:])
                if name == "diagnostics":
                    inside.append(inside_ms[1:])
            log(f"  round {round_index}: " + ", ".join(f"{name} {np.mean(ms[-1]):.1f} ms"
                                                       for name, ms in rounds.items()))
        check_first, checks, examples = time_stop_check(config, data, variants["plain"][0], setting.rounds)
    return DiagnosticsTiming(setting, steps_per_epoch, period, first, rounds, inside, check_first, checks, examples)


def time_stop_check(config: RunConfig, data, model: keras.Model, repeats: int) -> tuple[float, list[float], int]:
    """(first check ms, `repeats` more checks' ms, examples per check) of the stop's check of `config` (its
    --stop_check_examples) on `model`, as the trainer builds it."""
    target = build_training_target(config.replace(stop_at_train_loss=1e-12), model, data)  # A target never met.
    times = []
    for _ in range(1 + repeats):
        started = time.perf_counter()
        result = target.measure()
        times.append(1000.0 * (time.perf_counter() - started))
    return times[0], times[1:], int(result["examples"])


def diagnostics_result(timing: DiagnosticsTiming) -> dict:
    """The benchmark's JSON result: {"plain": {...}, "diagnostics": {...}, "setting": {...}}."""
    plain, diag = ({"epoch_ms": round(timing.epoch_ms(name), 3),
                    "first_epoch_ms": round(timing.first_epoch_ms[name], 3)} for name in ("plain", "diagnostics"))
    diag.update(overhead_percent=round(timing.overhead_percent, 3),
                overhead_percent_iqr=[round(p, 3) for p in timing.overhead_percent_iqr],
                callback_ms=round(timing.callback_ms, 3), callback_percent=round(timing.callback_percent, 3),
                first_epoch_extra_ms=round(timing.first_epoch_extra_ms, 3))
    setting = {**dataclasses.asdict(timing.setting), "diagnostics": list(timing.setting.diagnostics),
               "steps_per_epoch": timing.steps_per_epoch, "measurement_period": timing.period}
    stop_check = {"check_ms": round(float(np.median(timing.stop_check_ms)), 3),
                  "first_check_ms": round(timing.stop_check_first_ms, 3), "examples": timing.stop_check_examples,
                  "percent_of_epoch": round(timing.stop_check_percent, 3)}
    return {"plain": plain, "diagnostics": diag, "stop_check": stop_check, "setting": setting}


def diagnostics_report(timing: DiagnosticsTiming) -> str:
    """A readable table, then the JSON result as the LAST line (what scripts read)."""
    s = timing.setting
    lines = [f"{s.model} on {s.dataset}, batch {s.batch_size}, {timing.steps_per_epoch} steps per epoch; diagnostics "
             f"{','.join(s.diagnostics)} every {s.every} epoch(s); {s.rounds} rounds of {s.epochs} timed epochs; "
             + ("the trainer's whole epoch" if s.trainer_epoch else "training only"),
             f"{'variant':<12} {'epoch ms':>9} {'first ms':>9}  rounds: mean epoch ms (ratio to plain's round)"]
    ratios = {"plain": [1.0] * s.rounds, "diagnostics": timing.round_ratios()}
    for name in ("plain", "diagnostics"):
        lines.append(f"{name:<12} {timing.epoch_ms(name):>9.1f} {timing.first_epoch_ms[name]:>9.0f}  "
                     + " ".join(f"{ms:.1f} ({r:.3f})" for ms, r in zip(timing.round_ms(name), ratios[name])))
    low, high = timing.overhead_percent_iqr
    lines.append(f"overhead per epoch: {timing.overhead_percent:+.1f} % (median over rounds; their interquartile range "
                 f"{low:+.1f} % to {high:+.1f} %); one-off first-epoch cost: {timing.first_epoch_extra_ms:+.0f} ms")
    lines.append(f"inside the diagnostics' callbacks: {timing.callback_ms:.2f} ms per epoch = "
                 f"{timing.callback_percent:.2f} % of plain's epoch (background work left out)")
    lines.append(f"stop check (--stop_at_train_loss/_accuracy, {timing.stop_check_examples} clean training examples): "
                 f"{np.median(timing.stop_check_ms):.2f} ms per check = {timing.stop_check_percent:.2f} % of plain's "
                 f"epoch; first check {timing.stop_check_first_ms:.0f} ms (tracing)")
    lines.append(json.dumps(diagnostics_result(timing)))
    return "\n".join(lines)
