"""Training phases: each a span of epochs with its own optimizer (fresh state) and learning-rate schedule.

One phase by default; `--transition_epoch=T` adds a second from epoch T on (seed 001 §4, appendix C.5–C.7: e.g.
SGD without momentum at η = 0.9237, then SGD with μ = 0.95 at η = 0.005, or AdamW).

Momentum conventions: seed 001 writes heavy ball as g ← μg + ∇f, w ← w − ηg (PyTorch); Keras' SGD keeps
v ← μv − η∇f, w ← w + v. At constant η they are the same method with v = −ηg. A phase switch starts the new
optimizer with zero state in both conventions, so nothing is converted. Under a changing η they differ (Keras'
buffer carries the old η); tfregimes uses Keras' form.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from tfregimes.config.options import builder_arguments
from tfregimes.config.run_config import RunConfig
from tfregimes.optim import boundary_epochs, build_optimizer, build_schedule


@dataclasses.dataclass(frozen=True)
class Phase:
    index: int
    start_epoch: int
    end_epoch: int
    optimizer: str
    learning_rate: float
    momentum: float
    nesterov: bool
    lr_schedule: str
    lr_boundaries: tuple[float, ...]  # In epochs of the whole run (shares of the first phase resolved).
    decoupled_weight_decay: float

    @property
    def epochs(self) -> int:
        return self.end_epoch - self.start_epoch

    def contains(self, epoch: int) -> bool:
        return self.start_epoch <= epoch < self.end_epoch


def phases_from_config(config: RunConfig) -> list[Phase]:
    end_of_first = config.transition_epoch or config.epochs
    phases = [Phase(0, 0, end_of_first, config.optimizer, config.learning_rate, config.momentum, config.nesterov,
                    config.lr_schedule, boundary_epochs(config.lr_boundaries, end_of_first),
                    config.decoupled_weight_decay)]
    if config.transition_epoch:
        phases.append(Phase(1, config.transition_epoch, config.epochs, config.phase2_optimizer,
                            config.phase2_learning_rate, config.phase2_momentum, config.phase2_nesterov,
                            config.phase2_lr_schedule, config.phase2_lr_boundaries,
                            config.phase2_decoupled_weight_decay))
    return phases


def phase_at(phases: list[Phase], epoch: int) -> Phase:
    """The phase that trains epoch `epoch` (0-based); the last phase for epochs past the end."""
    return next((phase for phase in phases if phase.contains(epoch)), phases[-1])


def optimizer_arguments(phase: Phase, config: RunConfig) -> dict[str, Any]:
    """The options of `build_optimizer` that `phase.optimizer` has, from the phase and the config."""
    # --global_clipnorm is applied by RegimeModel, across replicas.
    arguments = builder_arguments("optimizer", phase.optimizer, phase, config)
    if phase.optimizer == "lars":  # LARS decays inside its trust ratio (You et al. 2017), with --weight_decay.
        arguments["weight_decay"] = config.weight_decay
    return arguments


def schedule_arguments(phase: Phase, config: RunConfig) -> dict[str, Any]:
    """The options of `build_schedule` for `phase`; durations in epochs counted from the phase's start."""
    arguments: dict[str, Any] = {"base_lr": phase.learning_rate, "total_epochs": phase.epochs,
                                 **builder_arguments("lr_schedule", phase.lr_schedule, phase, config)}
    if "boundaries" in arguments:  # --lr_boundaries count epochs of the whole run.
        arguments["boundaries"] = tuple(b - phase.start_epoch for b in arguments["boundaries"])
    if phase.index == 0:  # Warm-up and linear scaling belong to the start of training.
        arguments["warmup_epochs"] = config.warmup_epochs
        if config.reference_batch_size:
            arguments.update(batch_size=config.batch_size, reference_batch_size=config.reference_batch_size)
    return arguments


def build_phase_optimizer(phase: Phase, config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """`steps_per_epoch` counts micro-batches under gradient accumulation, as Keras' schedules do."""
    schedule = build_schedule(phase.lr_schedule, steps_per_epoch=steps_per_epoch, **schedule_arguments(phase, config))
    optimizer = build_optimizer(phase.optimizer, learning_rate=schedule, **optimizer_arguments(phase, config))
    if config.grad_accum_steps > 1:
        # Keras' own accumulation (read when the optimizer is built): updates every k steps with the mean gradient.
        optimizer.gradient_accumulation_steps = config.grad_accum_steps
    return optimizer


class PhaseRecord:
    """Records the phase in the history (`phase` column, 1-based) and in progress.json (whose optimizer the
    checkpoint holds); `tfregimes.training.recording.EpochRecorder` asks it."""

    name = "phase"

    def __init__(self):
        self.current: Phase | None = None

    def history_fields(self, epochs_done: int) -> dict[str, Any]:
        return {"phase": self.current.index + 1}

    def state(self) -> dict[str, Any]:
        return {"index": self.current.index, "optimizer": self.current.optimizer}


def coupled_weight_decay(phase: Phase, config: RunConfig) -> float:
    """The RegimeModel's coupled decay in `phase`: none under LARS, whose update applies it itself."""
    return 0.0 if phase.optimizer == "lars" else config.weight_decay
