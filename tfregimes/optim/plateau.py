"""A learning rate divided at run time whenever the training loss plateaus (seed 004 §7.1).

Jia & Su train every model of §7.1 "with an initial learning rate 0.1, divided by 10 whenever the training loss
plateaus"; our copy does not say how a plateau is detected, so the rule lives in
`tfregimes.training.plateau_controller` (documented and configurable there). This schedule only holds the count of
reductions k in a variable read inside the compiled train step (deciding needs no retracing):
  lr = max(peak · factor^k, min_lr).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfregimes.optim.schedules import SCHEDULES, _Schedule


@keras.saving.register_keras_serializable(package="tfregimes")
class PlateauSchedule(_Schedule):
    """`learning_rate` · `factor`^k, never below `min_learning_rate`; k = `reductions`, raised by `reduce()`."""

    def __init__(self, learning_rate: float, factor: float, min_learning_rate: float = 0.0, reductions: int = 0):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"the plateau factor must be in (0, 1), got {factor}")
        self.learning_rate = float(learning_rate)
        self.factor = float(factor)
        self.min_learning_rate = float(min_learning_rate)
        self.reductions = tf.Variable(int(reductions), dtype=tf.int64, trainable=False, name="plateau_reductions")

    def reduce(self) -> None:
        self.reductions.assign_add(1)

    def set_reductions(self, count: int) -> None:
        self.reductions.assign(int(count))

    @property
    def at_floor(self) -> bool:
        """Whether a further reduction would change nothing (the rate already sits at min_lr)."""
        return self.learning_rate * self.factor ** int(self.reductions.numpy()) <= self.min_learning_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        scale = ops.power(self.factor, ops.cast(self.reductions, "float32"))
        return ops.full_like(step, 1.0) * ops.maximum(self.learning_rate * scale, self.min_learning_rate)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "factor": self.factor,
                "min_learning_rate": self.min_learning_rate, "reductions": int(self.reductions.numpy())}


@SCHEDULES.register("plateau")
def _plateau(learning_rate: float, *, total_steps: int, warmup_steps: int, min_lr: float, plateau_factor: float):
    return PlateauSchedule(learning_rate, plateau_factor, min_lr)
