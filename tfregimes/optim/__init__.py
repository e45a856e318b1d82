"""Optimizers (incl. LARS) and learning-rate schedules, by name.

`build_schedule` turns a schedule defined in epochs into a Keras `LearningRateSchedule` of the
optimizer step; `build_optimizer` makes the optimizer that consumes it.
"""

from tfregimes.optim import (
    exploration,  # noqa: F401,E402  (registers the "explore" schedule)
    plateau,  # noqa: F401,E402  (registers the "plateau" schedule)
)
from tfregimes.optim.lars import LARS
from tfregimes.optim.optimizers import OPTIMIZERS, build_optimizer
from tfregimes.optim.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CosineSchedule,
    LinearWarmup,
    PolynomialSchedule,
    StepSchedule,
    boundary_epochs,
    build_schedule,
    epochs_to_steps,
    linear_scaled_learning_rate,
    parse_boundary,
)

__all__ = [
    "LARS", "OPTIMIZERS", "SCHEDULES", "ConstantSchedule", "CosineSchedule", "LinearWarmup",
    "PolynomialSchedule", "StepSchedule", "boundary_epochs", "build_optimizer", "build_schedule",
    "epochs_to_steps", "linear_scaled_learning_rate", "parse_boundary",
]
