"""The run-time rule that divides a `PlateauSchedule`'s learning rate when the training loss plateaus (seed 004).

Jia & Su §7.1: "an initial learning rate 0.1, divided by 10 whenever the training loss plateaus". Our copy does not
say how a plateau is detected, so the rule is the usual one (Keras' and PyTorch's ReduceLROnPlateau, mode "min",
PyTorch's relative threshold):
  - L[e] is epoch e's training loss as the run logs it (the mean over the epoch's batches, in training mode,
    without any regularizer's penalty);
  - epoch e improves when L[e] < best · (1 − threshold), best the lowest L seen so far (relative: a loss near zero
    still has to improve by the same share);
  - after `patience` epochs in a row without an improvement the rate is multiplied by the schedule's factor, and the
    count of epochs without improvement restarts from 0 (best is kept: the lower rate must beat it too).
Each reduction is written to the history (`lr_event`: when and why) and the state to progress.json, so a resumed
run makes the same decisions; metrics.json lists the epochs after which the rate was divided (`plateau`).
"""

from __future__ import annotations

import math
from typing import Any

import keras

from tfregimes.optim.plateau import PlateauSchedule


class PlateauController(keras.callbacks.Callback):
    name = "plateau"  # Its key in progress.json and metrics.json.

    def __init__(self, schedule: PlateauSchedule, *, patience: int, threshold: float):
        super().__init__()
        if patience < 1 or not 0.0 <= threshold < 1.0:
            raise ValueError(f"patience must be >= 1 and threshold in [0, 1), got {patience} and {threshold}")
        self.schedule = schedule
        self.patience = patience
        self.threshold = threshold
        self.best = math.inf
        self.wait = 0  # Epochs in a row without an improvement.
        self.reduced_after: list[int] = []  # Epochs completed when the rate was divided.
        self._events: dict[int, str] = {}

    # --- the rule, a pure function of the loss sequence ----------------------------------------------------
    def observe(self, loss: float, epochs_done: int) -> bool:
        """Takes the training loss of the epoch that made `epochs_done`; returns whether the rate was divided."""
        if loss < self.best * (1.0 - self.threshold):
            self.best, self.wait = loss, 0
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.wait = 0
        floor = " (already at --min_lr: unchanged)" if self.schedule.at_floor else ""
        self.schedule.reduce()
        self.reduced_after.append(epochs_done)
        self._events[epochs_done] = (f"plateau: no relative improvement of {self.threshold:g} over best loss "
                                     f"{self.best:.4g} for {self.patience} epochs; lr x {self.schedule.factor:g}"
                                     f"{floor}")
        return True

    def on_epoch_end(self, epoch, logs=None):
        self.observe(float((logs or {})["loss"]), epoch + 1)

    # --- what EpochRecorder records -----------------------------------------------------------------------
    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {"lr_event": self._events.get(epochs_done, "")}

    def state(self) -> dict[str, Any]:
        return {"best": None if math.isinf(self.best) else self.best, "wait": self.wait,
                "reductions": int(self.schedule.reductions.numpy()), "reduced_after": list(self.reduced_after)}

    def restore(self, state: dict[str, Any]) -> None:
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.reduced_after = [int(e) for e in state["reduced_after"]]
        self.schedule.set_reductions(int(state["reductions"]))
