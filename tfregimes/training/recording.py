"""Keras callbacks that make a run record itself: learning rate, timing, divergence, history and checkpoints.

Order matters: `EpochLogs` adds the learning rate and epoch time to the epoch's logs before `TensorBoard` and
`EpochRecorder` read them, and `EpochRecorder` runs last so that what it saves is the end-of-epoch state.
"""

from __future__ import annotations

import copy
import math
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from tfregimes.base import keras_private
from tfregimes.base.background import BackgroundFiles
from tfregimes.base.run_dir import RunDirectory, file_sha256
from tfregimes.base.scalars import ScalarWriter
from tfregimes.optim.state import current_learning_rate
from tfregimes.training import checkpoint_writer
from tfregimes.training.checkpoint_writer import WeightsSnapshot


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
    """Stops training cleanly at the first non-finite training loss and remembers where: the epoch counted from 1,
    as history.csv and the summary count them, and the batch within it counted from 0, as Keras does."""

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
            self.diverged_at = {"epoch": self._epoch + 1, "batch": int(batch)}
            self.model.stop_training = True


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard, with three changes:
    - the learning rate logged is the one `EpochLogs` put in the logs (that of the epoch's last step), not the
      optimizer's re-read (the next step's rate);
    - each epoch's scalars are written by one compiled call instead of one eager call per scalar (about 0.5 ms
      each here: with the diagnostics' dozen scalars that alone was 2 % of a digits epoch);
    - with per-epoch summaries (update_freq="epoch", ours) no batch-level summary call is made (Keras makes one per
      log per batch, with no writer to write to).
    The tags and values written are Keras' own (`epoch_<name>`, step = epoch). The first two override private hooks
    (`tfregimes.base.keras_private.OVERRIDDEN_HOOKS`), the third a public one."""

    def _collect_learning_rate(self, logs):
        return logs

    def on_train_batch_end(self, batch, logs=None):
        # With update_freq="epoch" (ours) Keras sets no default writer for batches, yet calls `tf.summary.scalar` for
        # every log of every batch, to write nothing (~0.3 ms a batch here); the rest of the hook (the graph, the
        # profiler) is kept.
        super().on_train_batch_end(batch, logs if self.update_freq != "epoch" else None)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._scalar_writers = {}  # writer name -> ScalarWriter; Keras makes new writers every fit.

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train_logs = self._collect_learning_rate({k: v for k, v in logs.items() if not k.startswith("val_")})
        if self.write_steps_per_second:
            train_logs["steps_per_second"] = keras_private.tensorboard_steps_per_second(self)
        val_logs = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        for name, values in (("train", train_logs), ("val", val_logs)):
            if not values:
                continue
            writer = keras_private.tensorboard_writer(self, name)
            if name not in self._scalar_writers:
                self._scalar_writers[name] = ScalarWriter(writer)
            self._scalar_writers[name]({f"epoch_{k}": v for k, v in values.items()}, epoch)


training_clock = time.monotonic  # What EpochRecorder's checkpoint policy counts seconds with (tests set their own).


class EpochRecorder(keras.callbacks.Callback):
    """At the end of an epoch that is due: checkpoint (model + optimizer), history.csv, then progress.json, in that
    order. An epoch is due when `checkpoint_every_secs` (0: every epoch) have passed since the last checkpoint or
    the start of the `fit`, and at the `fit`'s last epoch or when training stops: a small job's epochs take a
    fraction of a second, and a checkpoint every epoch cost it a tenth of its throughput (issue 23, item 8), so the
    time a kill can lose is bounded instead, as Orbax's `save_interval` policies do. The epochs after the last
    checkpoint are in `history` (and TensorBoard), not yet on disk; a resume from the checkpoint retrains them to the
    same numbers. With several workers every worker must decide alike (reading a distributed variable is a
    collective), so a cluster's trainer passes 0.

    progress.json is written last and names the checkpoint, so a kill at any point leaves the run resumable from
    the last checkpoint whose files are all complete. The files are written by a background thread while the next epoch
    trains: at the epoch's end the training thread only copies the values to save (`WeightsSnapshot`), the history
    rows and the records' states, and hands them to the thread, which writes the checkpoint, then history.csv, then
    progress.json, one checkpoint after another. One checkpoint's files at most are in flight: the next one first
    waits for them (and raises what writing them raised); `wait()` waits for all, and so does the end of `fit`
    unless `files` is given: then its owner waits (the trainer passes one thread for all its phases, and waits for
    it while it evaluates the run, so that the end of a phase does not stall on its files).
    Older checkpoints beyond `keep` are removed. Each of `records` (objects with `name`,
    `history_fields(epochs_done)` and `state()`) adds columns to the history row and its state to progress.json
    under its name, for the trainer to restore on resume. Each of `before_progress` is called (on the writing
    thread) before progress.json names the epoch as done (e.g. to wait for files other callbacks write in the
    background, so that a resumed run has them).
    """

    def __init__(self, run_dir: RunDirectory, history: list[dict[str, Any]], *, records: Sequence[Any] = (),
                 keep: int = 2, is_chief: bool = True, divergence: DivergenceMonitor | None = None,
                 before_progress: Sequence[Callable[[], None]] = (), checkpoint_every_secs: float = 0.0,
                 clock: Callable[[], float] | None = None, files: BackgroundFiles | None = None):
        super().__init__()
        self.checkpoint_every_secs = checkpoint_every_secs
        self.clock = clock or training_clock
        self._last_checkpoint = self.clock()
        self.before_progress = list(before_progress)
        self.run_dir = run_dir
        self.history = history  # Rows of earlier epochs (restored on resume); appended to in place.
        self.records = list(records)
        self.keep = keep
        self.is_chief = is_chief
        self.divergence = divergence
        self._owns_files = files is None
        self._files = BackgroundFiles("run-records") if files is None else files
        self._snapshot: WeightsSnapshot | None = None

    def on_train_begin(self, logs=None):
        self._last_checkpoint = self.clock()

    def _due(self, epoch: int) -> bool:
        return (self.checkpoint_every_secs <= 0 or epoch + 1 >= self.params.get("epochs", 0)
                or self.model.stop_training or self.clock() - self._last_checkpoint >= self.checkpoint_every_secs)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: _scalar(v) for k, v in (logs or {}).items()})
        for record in self.records:
            row.update(record.history_fields(epoch + 1))
        self.history.append(row)
        if self.divergence is not None and self.divergence.diverged:
            return  # Keep the last finite checkpoint: a diverged state is no place to resume from.
        if not self._due(epoch):
            return
        self._last_checkpoint = self.clock()
        if self._snapshot is None or self._snapshot.model is not self.model:
            self._snapshot = WeightsSnapshot(self.model)  # Kept across fits: it walks the model once.
        if not self.is_chief:
            # Reading distributed variables runs collectives that every worker must join: the other workers of a
            # cluster read what the chief reads, in the same order, and write nothing.
            self._snapshot.take()
            return
        self._files.wait()  # The previous checkpoint's files: one in flight at most; raises what writing raised.
        states = copy.deepcopy({record.name: record.state() for record in self.records})  # As of this epoch.
        self._files.submit(self._write_epoch, epoch + 1, self._snapshot.take(), list(self.history), states)

    def on_train_end(self, logs=None):
        if self._owns_files:
            self.wait()

    def wait(self) -> None:
        """Returns when the files of every epoch recorded so far are written, progress.json included."""
        self._files.wait()

    def _write_epoch(self, epochs_done: int, weights, history: list[dict[str, Any]], states: dict[str, Any]) -> None:
        """On the writing thread: the checkpoint, history.csv, then progress.json naming them."""
        checkpoint = self.run_dir.checkpoint_path(epochs_done)
        checkpoint_writer.write_checkpoint(checkpoint, weights)  # Keras writes model and optimizer variables.
        self.run_dir.write_history(history)
        for wait in self.before_progress:
            wait()
        # The checksum lets a resume tell a damaged checkpoint from a good one; the entries of the older
        # checkpoints kept on disk let it fall back to one of them (RunDirectory.resume_candidates).
        entry = {"epochs_done": epochs_done, "checkpoint": checkpoint.name, "sha256": file_sha256(checkpoint),
                 **states}
        previous = self.run_dir.read_progress()
        earlier = [older for older in (self.run_dir.resume_candidates(previous) if previous else [])
                   if older["epochs_done"] < epochs_done][:self.keep - 1]
        self.run_dir.write_progress(**entry, earlier=earlier)
        for old in sorted(self.run_dir.checkpoint_dir.glob("epoch-*.weights.h5"))[:-self.keep]:
            old.unlink(missing_ok=True)
        for torn in self.run_dir.checkpoint_dir.glob(".epoch-*.tmp"):  # A killed process's unfinished write.
            torn.unlink(missing_ok=True)


def _scalar(value: Any) -> Any:
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return value


def purge_tensorboard_from(log_dir: Path, step: int) -> None:
    """Makes TensorBoard drop the points at steps ≥ `step` that an earlier process wrote: a run killed after
    writing an epoch's scalars but before progress.json recorded the epoch retrains it on resume, which would
    draw each of those points twice. TensorBoard discards earlier events at steps ≥ S when it reads a SessionLog
    START event at step S ("orphaned data"); one is written into every directory holding event files, in a file
    whose name sorts after the earlier files (a later time) and before the ones this process writes next (its
    "0" sorts before any pid)."""
    stamp = time.time()
    for directory in sorted({path.parent for path in Path(log_dir).rglob("events.out.tfevents.*")}):
        name = f"events.out.tfevents.{int(stamp)}.{socket.gethostname()}.0.resume.v2"
        with tf.io.TFRecordWriter(str(directory / name)) as writer:
            writer.write(event_pb2.Event(wall_time=stamp, file_version="brain.Event:2").SerializeToString())
            # Twice: TensorBoard takes the first START it reads in a run for the run's beginning, not a restart.
            for _ in range(2):
                writer.write(event_pb2.Event(wall_time=stamp, step=step, session_log=event_pb2.SessionLog(
                    status=event_pb2.SessionLog.START)).SerializeToString())

