"""Learning-rate schedules, defined in epochs and evaluated at `optimizer.iterations`.

Every duration a user gives (boundaries, warm-up, total length) is in epochs; `epochs_to_steps`
is the one place that turns epochs into optimizer steps. Each schedule is a pure function of the
step counter, so a run resumed from a checkpoint that restores `optimizer.iterations` resumes its
schedule too. All schedules are Keras-serializable, so a model saved with its optimizer
round-trips.

Step counting: Keras evaluates the schedule at `iterations` *before* the update, so steps
0 .. steps_per_epoch - 1 are epoch 0, and a boundary at epoch E first applies at step
E * steps_per_epoch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import keras
from keras import ops

from tfregimes.base.registry import Registry

SCHEDULES: Registry = Registry("learning-rate schedule")

_SERIALIZATION_PACKAGE = "tfregimes"


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    """Number of optimizer steps in `epochs` (fractional epochs round to the nearest step)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if epochs < 0:
        raise ValueError(f"a duration in epochs must be >= 0, got {epochs}")
    return int(round(epochs * steps_per_epoch))


def parse_boundary(text: str) -> float | str:
    """A step boundary as written: epochs (`15`, `22.5`) as a float, or a share of the run (`50%`) as text.

    A share follows the run's length, so `--epochs=10` after a flagfile moves its boundaries with it."""
    text = str(text).strip()
    if text.endswith("%"):
        percent = float(text[:-1])  # ValueError for anything else.
        if not 0 < percent < 100:
            raise ValueError(f"a boundary given as a share of the run must be inside (0%, 100%), got {text}")
        return f"{percent:g}%"
    return float(text)


def boundary_epochs(boundaries: Sequence[float | str], total_epochs: float) -> tuple[float, ...]:
    """Boundaries in epochs: shares of the run (`"50%"`) resolved against `total_epochs`, epochs kept as given."""
    return tuple(total_epochs * float(b[:-1]) / 100 if isinstance(b, str) else float(b) for b in boundaries)


def linear_scaled_learning_rate(base_lr: float, batch_size: int | None,
                                reference_batch_size: int | None) -> float:
    """Linear scaling rule, Goyal et al. 2017 §2.1 (used by seed 000 A.2): lr = base_lr · B / B_ref.

    Without both batch sizes no scaling is applied and `base_lr` is returned.
    """
    if (batch_size is None) != (reference_batch_size is None):
        raise ValueError("linear learning-rate scaling needs both batch_size and "
                         f"reference_batch_size, got {batch_size} and {reference_batch_size}")
    if batch_size is None:
        return float(base_lr)
    if batch_size < 1 or reference_batch_size < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batch_size} and {reference_batch_size}")
    return float(base_lr) * batch_size / reference_batch_size


def _step_as_float(step):
    return ops.cast(step, "float32")


class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base of tfregimes' schedules: `peak_learning_rate` is the largest value it takes."""

    @property
    def peak_learning_rate(self) -> float:
        return self.learning_rate


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class ConstantSchedule(_Schedule):
    """The same learning rate at every step."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return ops.full_like(_step_as_float(step), self.learning_rate)

    def get_config(self):
        return {"learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class StepSchedule(_Schedule):
    """lr · decay^k where k is the number of boundaries (in steps) already reached."""

    def __init__(self, learning_rate: float, boundaries: Sequence[int], decay: float):
        self.learning_rate = float(learning_rate)
        self.boundaries = [int(b) for b in boundaries]
        self.decay = float(decay)

    def __call__(self, step):
        step = _step_as_float(step)
        reached = ops.zeros_like(step)
        for boundary in self.boundaries:
            reached = reached + ops.cast(ops.greater_equal(step, float(boundary)), "float32")
        return self.learning_rate * ops.power(self.decay, reached)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "boundaries": self.boundaries,
                "decay": self.decay}


def _decay_fraction(step, start_step: int, decay_steps: int):
    """Fraction of the decay phase done at `step`, clipped to [0, 1]."""
    done = (_step_as_float(step) - float(start_step)) / float(decay_steps)
    return ops.clip(done, 0.0, 1.0)


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class CosineSchedule(_Schedule):
    """Cosine decay from lr to min_lr over steps [start_step, start_step + decay_steps]
    (Loshchilov & Hutter 2017, without restarts); lr before start_step."""

    def __init__(self, learning_rate: float, start_step: int, decay_steps: int,
                 min_learning_rate: float = 0.0):
        self.learning_rate = float(learning_rate)
        self.start_step = int(start_step)
        self.decay_steps = int(decay_steps)
        self.min_learning_rate = float(min_learning_rate)

    def __call__(self, step):
        done = _decay_fraction(step, self.start_step, self.decay_steps)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * done))
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * cosine

    def get_config(self):
        return {"learning_rate": self.learning_rate, "start_step": self.start_step,
                "decay_steps": self.decay_steps, "min_learning_rate": self.min_learning_rate}


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class PolynomialSchedule(_Schedule):
    """min_lr + (lr − min_lr) · (1 − t)^power with t the fraction of [start_step,
    start_step + decay_steps] done; power = 1 is a linear decay."""

    def __init__(self, learning_rate: float, start_step: int, decay_steps: int,
                 min_learning_rate: float = 0.0, power: float = 1.0):
        self.learning_rate = float(learning_rate)
        self.start_step = int(start_step)
        self.decay_steps = int(decay_steps)
        self.min_learning_rate = float(min_learning_rate)
        self.power = float(power)

    def __call__(self, step):
        done = _decay_fraction(step, self.start_step, self.decay_steps)
        remaining = ops.power(1.0 - done, self.power)
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * remaining

    def get_config(self):
        return {"learning_rate": self.learning_rate, "start_step": self.start_step,
                "decay_steps": self.decay_steps, "min_learning_rate": self.min_learning_rate,
                "power": self.power}


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class LinearWarmup(_Schedule):
    """Gradual warm-up (Goyal et al. 2017 §2.2): from `start_learning_rate` at step 0, rise by a
    constant amount per step to `target_learning_rate` at `warmup_steps`; `after` from then on."""

    def __init__(self, after: keras.optimizers.schedules.LearningRateSchedule, warmup_steps: int,
                 start_learning_rate: float, target_learning_rate: float):
        self.after = after
        self.warmup_steps = int(warmup_steps)
        self.start_learning_rate = float(start_learning_rate)
        self.target_learning_rate = float(target_learning_rate)

    @property
    def peak_learning_rate(self) -> float:
        return max(self.target_learning_rate, self.start_learning_rate)

    def __call__(self, step):
        step = _step_as_float(step)
        rise = (self.target_learning_rate - self.start_learning_rate) / self.warmup_steps
        warming = self.start_learning_rate + rise * step
        return ops.where(step < float(self.warmup_steps), warming,
                         ops.cast(self.after(step), "float32"))

    def get_config(self):
        return {"after": keras.saving.serialize_keras_object(self.after),
                "warmup_steps": self.warmup_steps,
                "start_learning_rate": self.start_learning_rate,
                "target_learning_rate": self.target_learning_rate}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["after"] = keras.saving.deserialize_keras_object(config["after"])
        return cls(**config)


# Builders: each takes the (already scaled) peak learning rate, durations in steps, and only
# the options it uses; `build_schedule` rejects an option set for a schedule that ignores it.

@SCHEDULES.register("constant")
def _constant(learning_rate: float, *, total_steps: int, warmup_steps: int):
    return ConstantSchedule(learning_rate)


@SCHEDULES.register("step")
def _step(learning_rate: float, *, total_steps: int, warmup_steps: int,
          boundaries: Sequence[int], decay: float):
    if not boundaries:
        raise ValueError("the 'step' schedule needs at least one boundary (in epochs)")
    if any(b <= warmup_steps for b in boundaries):
        raise ValueError("step-schedule boundaries must lie after the warm-up")
    return StepSchedule(learning_rate, boundaries, decay)


def _decay_phase(total_steps: int, warmup_steps: int, name: str) -> int:
    if total_steps <= warmup_steps:
        raise ValueError(f"the {name!r} schedule needs more epochs than warm-up epochs")
    return total_steps - warmup_steps


@SCHEDULES.register("cosine")
def _cosine(learning_rate: float, *, total_steps: int, warmup_steps: int, min_lr: float):
    return CosineSchedule(learning_rate, warmup_steps,
                          _decay_phase(total_steps, warmup_steps, "cosine"), min_lr)


@SCHEDULES.register("poly")
def _poly(learning_rate: float, *, total_steps: int, warmup_steps: int, min_lr: float,
          power: float):
    if power <= 0:
        raise ValueError(f"the 'poly' schedule needs power > 0, got {power}")
    return PolynomialSchedule(learning_rate, warmup_steps,
                              _decay_phase(total_steps, warmup_steps, "poly"), min_lr, power)


_OPTION_DEFAULTS = {"boundaries": (), "decay": 0.1, "min_lr": 0.0, "power": 1.0,
                    "transition_steps": 0.0, "decay_interval_steps": 0.0, "decay_mode": "step",
                    "plateau_factor": 0.1}


def build_schedule(name: str, *, base_lr: float, steps_per_epoch: int, total_epochs: int,
                   boundaries: Sequence[float] = (), decay: float = 0.1,
                   warmup_epochs: float = 0.0, batch_size: int | None = None,
                   reference_batch_size: int | None = None, min_lr: float = 0.0,
                   power: float = 1.0, transition_epochs: float = 0.0,
                   decay_interval_epochs: float = 0.0,
                   decay_mode: str = "step",
                   plateau_factor: float = 0.1) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning-rate schedule `name` with all durations given in epochs.

    With `batch_size` and `reference_batch_size`, the peak learning rate is
    `linear_scaled_learning_rate(base_lr, ...)` (the returned schedule's `peak_learning_rate`;
    log it). With `warmup_epochs > 0`, a gradual linear warm-up precedes the schedule as in
    Goyal et al. 2017 §2.2, which seed 000 A.2 follows for small batch, large batch and LARS: it
    starts from the *unscaled* `base_lr` and reaches the scaled rate after `warmup_epochs`. Without
    batch scaling there is no smaller rate to start from, so the warm-up starts from 0.
    Step boundaries count from the start of training (warm-up included); cosine and poly decay
    over the epochs after the warm-up. `boundaries` and `decay` are used only by `step`, `min_lr`
    by `cosine`/`poly`, `power` by `poly`; setting one for another schedule is an error.
    """
    builder = SCHEDULES.get(name)
    if base_lr <= 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    if total_epochs <= 0:
        raise ValueError(f"total_epochs must be > 0, got {total_epochs}")
    if not 0 < decay:
        raise ValueError(f"decay must be > 0, got {decay}")
    if list(boundaries) != sorted(set(boundaries)) or any(b <= 0 or b >= total_epochs
                                                          for b in boundaries):
        raise ValueError(f"boundaries must increase strictly within (0, total_epochs="
                         f"{total_epochs}) epochs, got {tuple(boundaries)}")
    if not 0 <= warmup_epochs < total_epochs:
        raise ValueError(f"warmup_epochs must be in [0, total_epochs={total_epochs}), "
                         f"got {warmup_epochs}")
    peak_lr = linear_scaled_learning_rate(base_lr, batch_size, reference_batch_size)
    if not 0 <= min_lr < peak_lr:
        raise ValueError(f"min_lr must be in [0, peak learning rate {peak_lr}), got {min_lr}")

    if any(b <= warmup_epochs for b in boundaries):
        raise ValueError(f"step-schedule boundaries must lie after the warm-up ({warmup_epochs} epochs), "
                         f"got {tuple(boundaries)}")
    # A boundary inside the run acts from the first step after the warm-up at the earliest: in a run of a few steps
    # per epoch, a share such as 50 % of one epoch would otherwise round onto the first step.
    first_step = epochs_to_steps(warmup_epochs, steps_per_epoch) + 1
    options = {"boundaries": tuple(max(first_step, epochs_to_steps(b, steps_per_epoch)) for b in boundaries),
               "decay": decay, "min_lr": min_lr, "power": power,
               "transition_steps": epochs_to_steps(transition_epochs, steps_per_epoch),
               "decay_interval_steps": epochs_to_steps(decay_interval_epochs, steps_per_epoch),
               "decay_mode": decay_mode, "plateau_factor": plateau_factor}
    accepted = inspect.signature(builder).parameters
    for option, value in (("boundaries", tuple(boundaries)), ("decay", decay),
                          ("min_lr", min_lr), ("power", power),
                          ("transition_steps", transition_epochs),
                          ("decay_interval_steps", decay_interval_epochs),
                          ("decay_mode", decay_mode), ("plateau_factor", plateau_factor)):
        if option not in accepted and value != _OPTION_DEFAULTS[option]:
            raise ValueError(f"the {name!r} schedule does not use {option} (got {value!r})")
    warmup_steps = epochs_to_steps(warmup_epochs, steps_per_epoch)
    if warmup_epochs > 0 and warmup_steps == 0:
        raise ValueError(f"warmup_epochs={warmup_epochs} is less than one step")
    schedule = builder(peak_lr, total_steps=epochs_to_steps(total_epochs, steps_per_epoch),
                       warmup_steps=warmup_steps,
                       **{k: v for k, v in options.items() if k in accepted})
    if warmup_steps == 0:
        return schedule
    start_lr = float(base_lr) if batch_size is not None else 0.0
    return LinearWarmup(schedule, warmup_steps, start_learning_rate=start_lr,
                        target_learning_rate=peak_lr)
