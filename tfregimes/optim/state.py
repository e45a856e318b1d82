"""What an optimizer is doing now: the optimizer inside a loss-scale wrapper, the step its schedule reads, and the
learning rate of its last step. Read by the run's epoch logs, the exploration controller and the diagnostics."""

from __future__ import annotations

import keras

from tfregimes.base import keras_private


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer inside a LossScaleOptimizer (mixed_float16), else the optimizer itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def schedule_step(optimizer: keras.optimizers.Optimizer) -> int:
    """The step count schedules read: every micro-batch step, also under gradient accumulation (where Keras'
    `optimizer.iterations` counts only the updates)."""
    return int(keras.ops.convert_to_numpy(keras_private.optimizer_step_count(base_optimizer(optimizer))))


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate of the optimizer's last step.

    A schedule's `optimizer.learning_rate` is the rate of the NEXT step; at the end of an epoch that ends on a
    boundary it would already show the decayed rate, so the epoch logs the rate its last step used.
    """
    optimizer = base_optimizer(optimizer)
    schedule = keras_private.optimizer_schedule(optimizer)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        step = schedule_step(optimizer) - 1
        return float(keras.ops.convert_to_numpy(schedule(max(step, 0))))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
