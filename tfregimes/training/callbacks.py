"""Keras callbacks that make a run record itself: learning rate, timing, divergence, history and checkpoints.

Order matters: `EpochLogs` adds the learning rate and epoch time to the epoch's logs before `TensorBoard` and
`EpochRecorder` read them, and `EpochRecorder` runs last so that what it saves is the end-of-epoch state.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np

from tfregimes.training.run_dir import RunDirectory


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer inside a LossScaleOptimizer (mixed_float16), else the optimizer itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def schedule_step(optimizer: keras.optimizers.Optimizer) -> int:
    """The step count schedules read: every micro-batch step, also under gradient accumulation (where Keras'
    `optimizer.iterations` counts only the updates)."""
    return int(keras.ops.convert_to_numpy(base_optimizer(optimizer)._iterations))


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate of the optimizer's last step.

    A schedule's `optimizer.learning_rate` is the rate of the NEXT step; at the end of an epoch that ends on a
    boundary it would already show the decayed rate, so the epoch logs the rate its last step used.
    """
    optimizer = base_optimizer(optimizer)
    schedule = optimizer._learning_rate  # The schedule object or variable the optimizer was built with.
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        step = schedule_step(optimizer) - 1
        return float(keras.ops.convert_to_numpy(schedule(max(step, 0))))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class EpochLogs(keras.callbacks.Callback):
    """Adds `learning_rate`, `epoch_seconds` and `train_seconds` (the epoch without its evaluation) to the logs."""

    def __init__(self):
        super().__init__()
        self.train_seconds_total = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs=None):  # Validation inside fit starts: the epoch's training is over.
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        train_seconds = (self._train_end or end) - self._epoch_start
        self.train_seconds_total += train_seconds
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)
            logs["epoch_seconds"] = end - self._epoch_start
            logs["train_seconds"] = train_seconds


class DivergenceMonitor(keras.callbacks.Callback):
    """Stops training cleanly at the first non-finite training loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.diverged = False
        self.diverged_at: dict[str, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(np.asarray(loss))):
            self.diverged = True
            self.diverged_at = {"epoch": self._epoch, "batch": int(batch)}
            self.model.stop_training = True


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard, logging the learning rate that `EpochLogs` put in the logs (that of the epoch's last
    step) instead of re-reading the optimizer (the next step's rate)."""

    def _collect_learning_rate(self, logs):
        return logs


class EpochRecorder(keras.callbacks.Callback):
    """After each epoch: checkpoint (model + optimizer), history.csv, then progress.json, in that order.

    progress.json is written last and names the checkpoint, so a kill at any point leaves the run resumable from
    the last epoch whose files are all complete. Older checkpoints beyond `keep` are removed. Each of `records`
    (objects with `name`, `history_fields(epochs_done)` and `state()`) adds columns to the history row and its
    state to progress.json under its name, for the trainer to restore on resume. Each of `before_progress` is
    called before progress.json names the epoch as done (e.g. to wait for files other callbacks write in the
    background, so that a resumed run has them).
    """

    def __init__(self, run_dir: RunDirectory, history: list[dict[str, Any]], *, records: Sequence[Any] = (),
                 keep: int = 2, is_chief: bool = True, divergence: DivergenceMonitor | None = None,
                 before_progress: Sequence[Callable[[], None]] = ()):
        super().__init__()
        self.before_progress = list(before_progress)
        self.run_dir = run_dir
        self.history = history  # Rows of earlier epochs (restored on resume); appended to in place.
        self.records = list(records)
        self.keep = keep
        self.is_chief = is_chief
        self.divergence = divergence

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: _scalar(v) for k, v in (logs or {}).items()})
        for record in self.records:
            row.update(record.history_fields(epoch + 1))
        self.history.append(row)
        if self.divergence is not None and self.divergence.diverged:
            return  # Keep the last finite checkpoint: a diverged state is no place to resume from.
        checkpoint = self.run_dir.checkpoint_path(epoch + 1)
        if not self.is_chief:
            # Reading distributed variables runs collectives that every worker must join: the other workers of a
            # cluster save too, into a scratch file.
            with tempfile.TemporaryDirectory() as scratch:
                self.model.save_weights(os.path.join(scratch, checkpoint.name))
            return
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(checkpoint))  # Keras writes model and optimizer variables.
        self.run_dir.write_history(self.history)
        for wait in self.before_progress:
            wait()
        self.run_dir.write_progress(epochs_done=epoch + 1, checkpoint=checkpoint.name,
                                    **{record.name: record.state() for record in self.records})
        for old in sorted(self.run_dir.checkpoint_dir.glob("epoch-*.weights.h5"))[:-self.keep]:
            old.unlink(missing_ok=True)


def _scalar(value: Any) -> Any:
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return value
