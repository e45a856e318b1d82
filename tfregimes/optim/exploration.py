"""A learning rate decayed at a step chosen at run time: seed 000's extended exploration, then decay.

Seed 000 (Lee et al., appendix) keeps the large learning rate for extra epochs after the training loss has
flattened and decays at a moment chosen from the observed loss; its exact rule is not in our copy. This schedule
holds the peak rate until `start_decay(step)` is called (by `tfregimes.training.exploration_controller`, which
implements the documented rule), then decays from that step:
  step    lr = max(peak · decay^k, min_lr), k = 1 + whole `decay_interval_steps` elapsed since the decision;
  linear  from peak to min_lr over `transition_steps`, then min_lr;
  cosine  half-cosine from peak to min_lr over `transition_steps`, then min_lr.
The decision step lives in a variable read inside the compiled train step, so deciding needs no retracing.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from tfregimes.optim.schedules import SCHEDULES, _Schedule

DECAY_MODES = ("step", "linear", "cosine")
NOT_DECIDED = -1


@keras.saving.register_keras_serializable(package="tfregimes")
class ExplorationSchedule(_Schedule):
    """Peak learning rate until a run-time decision, then one of DECAY_MODES down to `min_learning_rate`."""

    def __init__(self, learning_rate: float, min_learning_rate: float, decay_mode: str, decay: float = 0.1,
                 transition_steps: int = 0, decay_interval_steps: int = 0, decay_start_step: int = NOT_DECIDED):
        if decay_mode not in DECAY_MODES:
            raise ValueError(f"unknown decay_mode {decay_mode!r}; valid: {', '.join(DECAY_MODES)}")
        if decay_mode == "step" and decay_interval_steps <= 0:
            raise ValueError("the step decay mode needs decay_interval_epochs > 0")
        if decay_mode != "step" and transition_steps <= 0:
            raise ValueError(f"the {decay_mode} decay mode needs transition_epochs > 0")
        self.learning_rate = float(learning_rate)
        self.min_learning_rate = float(min_learning_rate)
        self.decay_mode = decay_mode
        self.decay = float(decay)
        self.transition_steps = int(transition_steps)
        self.decay_interval_steps = int(decay_interval_steps)
        self.decay_start = tf.Variable(int(decay_start_step), dtype=tf.int64, trainable=False,
                                       name="decay_start_step")

    def start_decay(self, step: int) -> None:
        self.decay_start.assign(int(step))

    @property
    def decided(self) -> bool:
        return int(self.decay_start.numpy()) != NOT_DECIDED

    def _decayed(self, since):
        peak, floor = self.learning_rate, self.min_learning_rate
        if self.decay_mode == "step":
            intervals = 1.0 + ops.floor(since / float(self.decay_interval_steps))  # The first at the decision.
            return ops.maximum(peak * ops.power(self.decay, intervals), floor)
        progress = ops.minimum(since / float(self.transition_steps), 1.0)
        if self.decay_mode == "linear":
            return peak + (floor - peak) * progress
        return floor + 0.5 * (peak - floor) * (1.0 + ops.cos(math.pi * progress))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = ops.cast(self.decay_start, "float32")
        decided = ops.logical_and(start >= 0.0, step >= start)
        since = ops.maximum(step - start, 0.0)
        return ops.where(decided, self._decayed(since), ops.full_like(step, self.learning_rate))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "min_learning_rate": self.min_learning_rate,
                "decay_mode": self.decay_mode, "decay": self.decay, "transition_steps": self.transition_steps,
                "decay_interval_steps": self.decay_interval_steps,
                "decay_start_step": int(self.decay_start.numpy())}


@SCHEDULES.register("explore")
def _explore(learning_rate: float, *, total_steps: int, warmup_steps: int, min_lr: float, decay: float,
             transition_steps: int, decay_interval_steps: int, decay_mode: str):
    return ExplorationSchedule(learning_rate, min_lr, decay_mode, decay, transition_steps, decay_interval_steps)
