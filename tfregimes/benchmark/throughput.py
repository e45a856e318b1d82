"""Training throughput against plain Keras and PyTorch: `python -m tfregimes.benchmark --suite=throughput`.

For each job (a network, a dataset, a batch size), in one process (PyTorch in a worker), images per second of:
- `trainer`: the tfregimes trainer's epoch: its model wrapper (`RegimeModel`), optimizer and schedule, input
  pipeline and per-epoch callbacks (`EpochLogs`, `DivergenceMonitor`, TensorBoard, the `EpochRecorder`'s checkpoint,
  history and progress.json), built by the trainer's own functions; without the test-split evaluation, which is
  not training;
- `trainer_mixed_bfloat16`, `trainer_mixed_float16`, `trainer_jit_compile`, `trainer_checkpoint_every_epoch` (when
  asked for): the trainer's epoch with that one change (`--precision`, `--jit_compile`, `--checkpoint_every_secs=0`),
  timed in the same rounds;
- `keras_fit`: plain `model.fit` of the same network (`build_model`, same seed) compiled with SGD + momentum and
  sparse cross-entropy, on the same `tf.data` input (the dataset's `train` pipeline), with no callback but the clock;
- `torch_eager`, `torch_compile`: the PyTorch twin of the network (`torch_reference`, the same parameter count)
  trained by SGD + momentum on the same in-memory examples, eagerly and with `torch.compile`, in float32, in a
  worker process that never imports TensorFlow (`torch_worker`: the two frameworks crashed in one process), timed
  by its own clocks and CPU time. When PyTorch is not installed these two are skipped; when the worker dies, or
  does not answer within `torch_timeout` seconds (then it is killed), they are dropped from the job; the result's
  `torch` says which.

Method: each variant is built and trains one untimed epoch (tracing, `torch.compile`'s compilation). Each of
`rounds` rounds then runs every variant for one untimed lead epoch (the first steps after another framework ran are
slow) and `epochs` timed ones, continuing its own training; for Keras in one `fit`, timed from the start of the
first timed epoch (a callback first in the list) to the end of the `fit` (one last in it). The trainer checkpoints
as a run does (`--checkpoint_every_secs`, and always at a `fit`'s last epoch, as a run at the end of each phase;
`trainer_checkpoint_every_epoch` after every epoch), its files written in the background as in a run: any of the
lead epoch's are waited for before the clock starts; those of a timed epoch overlap the next one, inside the time;
those of the fit's last epoch, which a run writes while it evaluates or starts its next phase, are waited for after
the clock stops, and the CPU time of that wait (the writing thread's) is added to the round's. A variant's round
value is its
images/s over the timed epochs; `ratio_to_keras_fit` is the median over rounds of (variant / keras_fit of the same
round), so a change in a shared machine's load touches both sides alike; `images_per_s` is the median of the rounds.
`cpu_ratio_to_keras_fit` is the same median for the process's CPU time per timed epoch (all its threads, background
writes included; keras_fit's over the variant's): on a machine shared with other processes, wall time swings with
their load, CPU time much less (the PyTorch variants' is the worker's). Augmentation is off in every variant
(PyTorch has none here); `deterministic` (the trainer's default) turns on TensorFlow's op determinism for the whole
process, so for every Keras variant, and Keras then compiles without XLA: XLA variants need deterministic=False.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from tfregimes.base.background import BackgroundFiles
from tfregimes.base.run_dir import RunDirectory
from tfregimes.benchmark import torch_worker
from tfregimes.config.run_config import RunConfig
from tfregimes.models import build_model
from tfregimes.training import recording
from tfregimes.training.distribution import precision_policy
from tfregimes.training.phases import phases_from_config
from tfregimes.training.trainer import (
    build_network_and_wrapper,
    compile_for_phase,
    epoch_callbacks,
    load_run_data,
    seed_run,
)

KERAS_FIT = "keras_fit"
# The two jobs: ResNet-20 on 32×32×3 at batch 128, and the default job's digits CNN (RunConfig()).
DEFAULT_JOBS = (("resnet20", "synthetic32", 128), ("cnn_small", "digits", 64))


@dataclasses.dataclass(frozen=True)
class ThroughputSetting:
    model: str = "resnet20"
    dataset: str = "synthetic32"
    batch_size: int = 128
    train_subset: int = 0  # 0: the whole training split.
    epochs: int = 1  # Timed epochs per variant and round (after one untimed lead epoch).
    rounds: int = 3
    seed: int = 0
    learning_rate: float = 0.05
    precision: str = "float32"
    jit_compile: bool = False
    torch: bool = True  # Time the PyTorch twins when PyTorch is installed.
    torch_timeout: float = torch_worker.ANSWER_TIMEOUT  # Seconds for each answer of the PyTorch worker.
    trainer_variants: tuple[str, ...] = ()  # More trainer variants, each with one change (TRAINER_VARIANTS).
    deterministic: bool = True  # The trainer's default; TensorFlow's op determinism is process-wide.

    def check(self) -> None:
        if min(self.epochs, self.rounds, self.batch_size) < 1:
            raise ValueError("epochs, rounds and batch_size must be >= 1")
        unknown = sorted(set(self.trainer_variants) - set(TRAINER_VARIANTS))
        if unknown:
            raise ValueError(f"unknown trainer variant {', '.join(unknown)}; known: {', '.join(TRAINER_VARIANTS)}")
        if self.deterministic and (self.jit_compile or "jit_compile" in self.trainer_variants):
            # Keras silently compiles without XLA while op determinism is on (keras trainer.model_supports_jit).
            raise ValueError("XLA needs --nodeterministic: TensorFlow's op determinism turns Keras' jit_compile off")

    def run_config(self) -> RunConfig:
        return RunConfig(dataset=self.dataset, model=self.model, batch_size=self.batch_size, seed=self.seed,
                         train_subset=self.train_subset, learning_rate=self.learning_rate, lr_schedule="constant",
                         precision=self.precision, jit_compile=self.jit_compile, augment="none",
                         deterministic=self.deterministic)


class _KerasClock:
    """`first` and `last` callbacks: the wall and CPU time from the start of epoch `timed_from` (once what
    `settle` waits for, the lead epoch's background writes, is done) to the end of `fit`."""

    def __init__(self, settle: Callable[[], None] = lambda: None):
        self.timed_from = 0
        self.seconds: tuple[float, float] | None = None  # (wall, CPU of the whole process)
        clock = self

        class First(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == clock.timed_from:
                    settle()  # The lead epoch's background writes (none unless checkpointed) stay outside.
                    clock._started = (time.perf_counter(), time.process_time())

        class Last(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                clock.seconds = (time.perf_counter() - clock._started[0], time.process_time() - clock._started[1])

        self.first, self.last = First(), Last()


class _KerasRunner:
    """Fits `model` on the data's train pipeline, continuing its epoch count: `lead` untimed epochs, then `epochs`
    timed ones, in one `fit`."""

    def __init__(self, model, data, config: RunConfig, callbacks: list[keras.callbacks.Callback],
                 settle: Callable[[], None] = lambda: None):
        self.model, self.data, self.config, self.callbacks, self.settle = model, data, config, callbacks, settle
        self.steps = data.steps_per_epoch(config.batch_size)
        self.clock = _KerasClock(settle)
        self.next_epoch = 0

    def run(self, epochs: int, lead: int = 0) -> tuple[float, float]:
        """Wall and CPU seconds from the start of the first timed epoch to the end of the fit, plus the CPU seconds
        of the background writes it left."""
        start = self.next_epoch
        self.clock.timed_from, self.clock.seconds = start + lead, None
        end = start + lead + epochs
        # One epoch of data more than the fit runs: an epoch that ends the data is slower.
        dataset = self.data.train(self.config.batch_size, seed=self.config.seed, start_epoch=start,
                                  num_epochs=end + 1)
        self.model.fit(dataset, epochs=end, initial_epoch=start, steps_per_epoch=self.steps,
                       callbacks=[self.clock.first, *self.callbacks, self.clock.last], verbose=0, shuffle=False)
        self.next_epoch = end
        wall, cpu = self.clock.seconds
        # The fit's last checkpoint, which a run writes while it evaluates or starts its next phase: its writing
        # thread's CPU counts, its wall time does not (it does not hold training up).
        started = time.process_time()
        self.settle()
        return wall, cpu + time.process_time() - started


class _TorchRunner:
    """One of the worker's twins; `run` raises torch_worker.WorkerFailed when the worker dies."""

    def __init__(self, worker: torch_worker.TorchWorker, name: str):
        self.worker, self.name = worker, name

    def run(self, epochs: int, lead: int = 0) -> tuple[float, float]:
        return self.worker.run(self.name, epochs, lead)


# Extra trainer variants, one change each: its RunConfig changes.
TRAINER_VARIANTS = {
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
    "mixed_float16": {"precision": "mixed_float16"},
    "jit_compile": {"jit_compile": True},
    "checkpoint_every_epoch": {"checkpoint_every_secs": 0.0},  # The trainer's checkpoint policy before issue 23 item 8.
}


def _trainer_runner(config: RunConfig, data, run_dir: RunDirectory) -> _KerasRunner:
    """The trainer's model, optimizer, schedule and per-epoch callbacks for `config`, built by its own functions."""
    with precision_policy(config.precision):
        seed_run(config)  # The trainer's kernels (op determinism by default) and initial weights.
        model = build_network_and_wrapper(config, data.info.input_shape, data.info.num_classes)
        compile_for_phase(model, phases_from_config(config)[0], config, data.steps_per_epoch(config.batch_size))
    run_dir.create()
    files = BackgroundFiles("run-records")  # As the trainer does: its owner waits for it, not the end of `fit`.
    recorder = recording.EpochRecorder(run_dir, [], checkpoint_every_secs=config.checkpoint_every_secs, files=files)
    callbacks = epoch_callbacks(
        before_diagnostics=[recording.EpochLogs(), recording.DivergenceMonitor()], diagnostics=[],
        writers=[recording.TensorBoard(log_dir=str(run_dir.tensorboard_dir)), recorder])
    return _KerasRunner(model, data, config, callbacks, settle=files.wait)


def build_runners(setting: ThroughputSetting, scratch: Path, workers: contextlib.ExitStack,
                  worker_command: tuple[str, ...] = torch_worker.COMMAND) -> tuple[dict, int, str]:
    """{variant: runner}, steps per epoch, and what became of PyTorch ("2.x", or why it was skipped or failed).
    The PyTorch worker, started by `worker_command`, is closed with `workers`."""
    config = setting.run_config()
    data = load_run_data(config)
    steps = data.steps_per_epoch(config.batch_size)
    runners = {"trainer": _trainer_runner(config, data, RunDirectory(scratch / "trainer"))}
    for change in setting.trainer_variants:
        changed = config.replace(**TRAINER_VARIANTS[change])
        runners[f"trainer_{change}"] = _trainer_runner(changed, data, RunDirectory(scratch / change))

    keras.utils.set_random_seed(setting.seed)
    network = build_model(setting.model, input_shape=data.info.input_shape, num_classes=data.info.num_classes)
    network.compile(optimizer=keras.optimizers.SGD(setting.learning_rate, momentum=0.9),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                    jit_compile=setting.jit_compile)
    runners[KERAS_FIT] = _KerasRunner(network, data, config, [])

    if not setting.torch:
        return runners, steps, "skipped: --notorch"
    images, labels = data.arrays("train")
    np.savez(scratch / "torch_arrays.npz", images=images, labels=labels)
    request = {"arrays": str(scratch / "torch_arrays.npz"), "model": setting.model,
               "input_shape": list(data.info.input_shape), "num_classes": data.info.num_classes,
               "parameters": sum(int(np.prod(v.shape)) for v in network.trainable_variables),
               "batch_size": setting.batch_size, "learning_rate": setting.learning_rate, "seed": setting.seed}
    try:
        worker = workers.enter_context(torch_worker.TorchWorker(request, scratch / "torch_worker.err",
                                                                 worker_command, setting.torch_timeout))
    except torch_worker.WorkerFailed as failure:
        return runners, steps, str(failure)
    if not worker.status.startswith("skipped"):
        runners.update({name: _TorchRunner(worker, name) for name in torch_worker.RUNNERS})
    return runners, steps, worker.status


def time_throughput(setting: ThroughputSetting, *, log=print,
                    worker_command: tuple[str, ...] = torch_worker.COMMAND) -> dict:
    """One job's JSON result; see the module docstring for the method."""
    setting.check()
    with tempfile.TemporaryDirectory(prefix="tfregimes-throughput-") as scratch, \
            precision_policy(setting.precision), contextlib.ExitStack() as workers:  # The networks' policy.
        runners, steps, torch_status = build_runners(setting, Path(scratch), workers, worker_command)
        rounds, cpu_rounds, torch_status = time_rounds(runners, steps * setting.batch_size, setting.epochs,
                                                       setting.rounds, torch_status, log=log)
    return {"model": setting.model, "dataset": setting.dataset, "batch_size": setting.batch_size,
            "steps_per_epoch": steps, "torch": torch_status, "variants": variant_ratios(rounds, cpu_rounds),
            "setting": dataclasses.asdict(setting), "machine": machine_state()}


def time_rounds(runners: dict, images_per_epoch: int, epochs: int, rounds: int, torch_status: str, *,
                log=print) -> tuple[dict, dict, str]:
    """({variant: images/s per round}, {variant: CPU seconds per timed epoch per round}, torch status): one
    untimed epoch of each runner, then `rounds` interleaved rounds. The PyTorch variants leave the job, and the
    status says why, when their worker fails."""
    runners = dict(runners)

    def run(name: str, epochs: int, lead: int) -> tuple[float, float] | None:
        nonlocal torch_status
        try:
            return runners[name].run(epochs, lead=lead)
        except torch_worker.WorkerFailed as failure:
            torch_status = str(failure)
            log(f"  PyTorch: {torch_status}; its variants leave the job")
            for other in [other for other, runner in runners.items() if isinstance(runner, _TorchRunner)]:
                del runners[other]
            return None

    for name in list(runners):
        if name in runners:
            started = time.perf_counter()
            if run(name, 1, 0) is not None:
                log(f"  {name}: built and trained one epoch in {time.perf_counter() - started:.1f} s")
    walls = {name: [] for name in runners}
    cpus = {name: [] for name in runners}  # CPU seconds of the process per timed epoch
    for round_index in range(rounds):
        for name in list(walls):
            seconds = run(name, epochs, 1) if name in runners else None  # Not when its worker just failed.
            if seconds is not None:
                walls[name].append(images_per_epoch * epochs / seconds[0])
                cpus[name].append(seconds[1] / epochs)
        walls = {name: values for name, values in walls.items() if name in runners}
        log(f"  round {round_index + 1}/{rounds}: "
            + ", ".join(f"{name} {values[-1]:.0f}/s" for name, values in walls.items()))
    return walls, {name: cpus[name] for name in walls}, torch_status


def variant_ratios(rounds: dict, cpu_rounds: dict) -> dict:
    """Each variant's median images/s, and its medians of per-round ratios to keras_fit (wall and CPU)."""
    base = rounds[KERAS_FIT]
    variants = {}
    for name, values in rounds.items():
        ratios = [value / reference for value, reference in zip(values, base)]
        cpu_ratios = [reference / value for value, reference in zip(cpu_rounds[name], cpu_rounds[KERAS_FIT])]
        variants[name] = {"images_per_s": round(float(np.median(values)), 1),
                          "ratio_to_keras_fit": round(float(np.median(ratios)), 3),
                          "round_images_per_s": [round(v, 1) for v in values],
                          "cpu_ratio_to_keras_fit": round(float(np.median(cpu_ratios)), 3)}
    return variants


THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def machine_state() -> dict:
    """What the numbers were measured under: CPUs, the thread variables set, the load average (other processes)."""
    return {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
            "threads": {name: os.environ.get(name, "default") for name in THREAD_VARIABLES}}


def throughput_report(results: list[dict]) -> str:
    """A table per job, then the JSON result {"jobs": [...]} as the LAST line."""
    lines = []
    for job in results:
        setting = job["setting"]
        lines.append(f"{job['model']} on {job['dataset']}, batch {job['batch_size']}, {job['steps_per_epoch']} steps "
                     f"per epoch, {setting['precision']}{', XLA' if setting['jit_compile'] else ''}; medians of "
                     f"{setting['rounds']} interleaved rounds; PyTorch: {job['torch']}; load average "
                     f"{job['machine']['load_average_1min']} on {job['machine']['cpus']} CPUs")
        lines.append(f"  {'variant':<24} {'images/s':>9} {'× keras_fit':>11} {'CPU ×':>6}  rounds (images/s)")
        for name, timing in job["variants"].items():
            lines.append(f"  {name:<24} {timing['images_per_s']:>9.0f} {timing['ratio_to_keras_fit']:>11.2f} "
                         f"{timing['cpu_ratio_to_keras_fit']:>6.2f}  "
                         + " ".join(f"{v:.0f}" for v in timing["round_images_per_s"]))
    lines.append(json.dumps({"jobs": results}))
    return "\n".join(lines)
