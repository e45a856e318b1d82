"""The run-time rule that decides when an `ExplorationSchedule` starts decaying (seed 000's method).

Our copy of seed 000 does not state its exact rule, so this one is documented and configurable:
  1. flattening: at the end of epoch e, the relative improvement of the epoch training loss over the last
     `window` epochs, (L[e − window] − L[e]) / |L[e − window]|, lies in [0, `tolerance`): the loss still falls,
     by less than the tolerance. A loss that rose (improvement < 0, e.g. right after warm-up) is not a plateau;
  2. keep exploring at the large learning rate for `extra_epochs` more epochs;
  3. then start the decay (the schedule's mode: step factors, or a smooth transition down to min_lr).
Each decision is written to the history (`lr_event` column: what was decided and the numbers behind it) and its
state to progress.json, so a resumed run makes the same decisions.
"""

from __future__ import annotations

from typing import Any

import keras

from tfregimes.optim.exploration import ExplorationSchedule
from tfregimes.optim.state import schedule_step


class ExplorationController(keras.callbacks.Callback):
    name = "exploration"  # Its key in progress.json.

    def __init__(self, schedule: ExplorationSchedule, *, window: int, tolerance: float, extra_epochs: int):
        super().__init__()
        if window < 1 or extra_epochs < 0:
            raise ValueError("window must be >= 1 and extra_epochs >= 0")
        self.schedule = schedule
        self.window = window
        self.tolerance = tolerance
        self.extra_epochs = extra_epochs
        self.losses: list[float] = []
        self.flat_epoch: int | None = None  # Epochs completed when flattening was detected.
        self.decay_epoch: int | None = None  # Epochs completed when the decay started.
        self._events: dict[int, str] = {}

    # --- the rule, a pure function of the loss history ----------------------------------------------------
    def relative_improvement(self) -> float | None:
        if len(self.losses) <= self.window:
            return None
        before = self.losses[-1 - self.window]
        return (before - self.losses[-1]) / abs(before) if before else 0.0

    def is_flat(self) -> bool:
        improvement = self.relative_improvement()
        return improvement is not None and 0.0 <= improvement < self.tolerance  # A rise is not a plateau.

    def on_epoch_end(self, epoch, logs=None):
        epochs_done = epoch + 1
        self.losses.append(float((logs or {})["loss"]))
        if self.flat_epoch is None and self.is_flat():
            self.flat_epoch = epochs_done
            self._events[epochs_done] = (
                f"flat: loss improved {self.relative_improvement():.4g} (relative) over {self.window} epochs < "
                f"tolerance {self.tolerance:g}; exploring {self.extra_epochs} more epochs")
        if (self.flat_epoch is not None and self.decay_epoch is None
                and epochs_done >= self.flat_epoch + self.extra_epochs):
            self.decay_epoch = epochs_done
            step = schedule_step(self.model.optimizer)
            self.schedule.start_decay(step)
            event = f"decay: {self.schedule.decay_mode} decay starts at step {step}"
            self._events[epochs_done] = "; ".join(filter(None, [self._events.get(epochs_done), event]))

    # --- what EpochRecorder records -----------------------------------------------------------------------
    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {"lr_event": self._events.get(epochs_done, "")}

    def state(self) -> dict[str, Any]:
        return {"losses": self.losses, "flat_epoch": self.flat_epoch, "decay_epoch": self.decay_epoch,
                "decay_start_step": int(self.schedule.decay_start.numpy())}

    def restore(self, state: dict[str, Any]) -> None:
        self.losses = list(state["losses"])
        self.flat_epoch, self.decay_epoch = state["flat_epoch"], state["decay_epoch"]
        self.schedule.start_decay(state["decay_start_step"])
