"""`--stop_at_train_accuracy`: end a run at the first epoch whose training accuracy reaches a target.

Keskar et al. (seed 003, §2.2 and Table 2) compare minima that small- and large-batch training reach at the same
(near-100 %) training accuracy, not after the same number of epochs. The accuracy read is the one the run records
in history.csv (`accuracy`: the running mean over the epoch's batches, in training mode), so the epoch the run stops
at is the first row of history.csv at or above the target. The state goes to progress.json, so a run killed after
it reached the target and resumed stays stopped instead of training on.
"""

from __future__ import annotations

from typing import Any

import keras


def check_target(target: float) -> None:
    """0 turns the stop off; any other target must be a fraction of the examples in (0, 1]."""
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"--stop_at_train_accuracy={target}: must be a fraction in (0, 1] (0.99 for 99 %), or 0 "
                         "for no stop")


class TrainAccuracyTarget(keras.callbacks.Callback):
    """Stops `fit` at the end of the first epoch whose logged `accuracy` is at least `target`. A record of
    `EpochRecorder` (its state in progress.json under `name`): it must run before the recorder."""

    name = "target"  # Its key in progress.json.

    def __init__(self, target: float):
        super().__init__()
        check_target(target)
        if target == 0.0:
            raise ValueError("a target of 0 means no stop: build no TrainAccuracyTarget")
        self.target = target
        self.reached_at_epoch: int | None = None  # Epochs completed when the target was first reached.

    @property
    def reached(self) -> bool:
        return self.reached_at_epoch is not None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("accuracy")
        if self.reached_at_epoch is None and accuracy is not None and float(accuracy) >= self.target:
            self.reached_at_epoch = epoch + 1
        if self.reached:
            self.model.stop_training = True

    # --- EpochRecorder's record interface, and the resume ---------------------------------------------------
    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {"target": self.target, "reached_at_epoch": self.reached_at_epoch}

    def restore(self, state: dict[str, Any]) -> None:
        self.reached_at_epoch = state.get("reached_at_epoch")

    def metrics(self) -> dict[str, Any]:
        """What metrics.json says about the target."""
        return {"stop_at_train_accuracy": self.target, "reached_target": self.reached,
                "stopped_at_epoch": self.reached_at_epoch}
