"""Which options belong to which choice, in one table: read by the builders' arguments (`tfregimes.training.phases`),
the check that rejects a flag the run would ignore (`tfregimes.training.run_flag_rules`) and the flags' help text
(`--helpfull`). A new option of an optimizer or schedule is one row here, plus its RunConfig field and flag.

The table imports no TensorFlow (tools that read results start without it), so the regularizers' and training
diagnostics' names are written here, not read from their registries; a regularizer's rows are its step's keyword
arguments (`tfregimes.steps.regularizer_options`). tests/training/test_options.py holds both to the registries. A
model's options are checked by the model's own builder (`reject_unused_options`), which knows which ones it reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfregimes.config.run_config import RunConfig

# The names of tfregimes.steps.REGULARIZERS and tfregimes.diagnostics.adapters.TRAINING_DIAGNOSTICS, in their
# registries' (sorted) order, which the help text lists them in.
REGULARIZER_NAMES = ("fisher", "none", "proximal", "sam")
DIAGNOSTIC_NAMES = ("angular", "elr", "margins", "momentum")
# Each regularizer's own options: the keyword arguments of its step (tfregimes.steps.regularizer_options).
REGULARIZER_OPTIONS: dict[str, tuple[str, ...]] = {
    "fisher": ("fisher_alpha", "fisher_beta", "fisher_subbatches", "clip_global_norm", "fisher_batch_loss"),
    "none": (),
    "proximal": ("proximal_lambda", "proximal_steps"),
    "sam": ("sam_rho", "sam_subbatches"),
}


@dataclasses.dataclass(frozen=True)
class Option:
    flag: str  # The flag and RunConfig field.
    choice: str  # The flag that chooses what reads it: optimizer, lr_schedule, regularizer or diagnostics.
    values: tuple[str, ...]  # The choices that read it.
    argument: str | None = None  # Its name as an argument of the choice's builder; None: read by the trainer.
    per_phase: bool = False  # Phase 2 has its own, phase2_<flag>, read by phase 2's choice.

    def requirement(self, phase2: bool = False) -> str:
        """The flags that make this option apply, as the help and errors say it."""
        choice = f"--phase2_{self.choice}" if phase2 else f"--{self.choice}"
        if self.choice == "regularizer" and set(self.values) == set(REGULARIZER_NAMES) - {"none"}:
            return "--regularizer"
        if self.choice == "diagnostics" and set(self.values) == set(DIAGNOSTIC_NAMES):
            return "--diagnostics"
        values = ", ".join(self.values[:-1]) + " or " + self.values[-1] if len(self.values) > 1 else self.values[0]
        return f"{choice}={values}"


_OPTIMIZER_AND_SCHEDULE_OPTIONS = (
    Option("momentum", "optimizer", ("sgd", "lars"), "momentum", per_phase=True),
    Option("nesterov", "optimizer", ("sgd",), "nesterov", per_phase=True),
    Option("decoupled_weight_decay", "optimizer", ("sgd", "adam", "adamw"), "decoupled_weight_decay",
           per_phase=True),
    Option("lars_trust_coefficient", "optimizer", ("lars",), "trust_coefficient"),
    Option("lr_boundaries", "lr_schedule", ("step",), "boundaries", per_phase=True),
    Option("lr_decay", "lr_schedule", ("step", "explore"), "decay"),
    Option("min_lr", "lr_schedule", ("cosine", "poly", "explore", "plateau"), "min_lr"),
    Option("lr_power", "lr_schedule", ("poly",), "power"),
    Option("exploration_decay", "lr_schedule", ("explore",), "decay_mode"),
    Option("transition_epochs", "lr_schedule", ("explore",), "transition_epochs"),
    Option("decay_interval_epochs", "lr_schedule", ("explore",), "decay_interval_epochs"),
    # Read by the trainer's ExplorationController, which decides when an explore schedule decays.
    Option("flat_window", "lr_schedule", ("explore",)),
    Option("flat_tolerance", "lr_schedule", ("explore",)),
    Option("extra_exploration_epochs", "lr_schedule", ("explore",)),
    Option("plateau_factor", "lr_schedule", ("plateau",), "plateau_factor"),
    # Read by the trainer's PlateauController, which decides when a plateau schedule divides the rate.
    Option("plateau_patience", "lr_schedule", ("plateau",)),
    Option("plateau_threshold", "lr_schedule", ("plateau",)),
)


def _regularizer_options() -> tuple[Option, ...]:
    takers: dict[str, list[str]] = {}
    for name in REGULARIZER_NAMES:
        for option in REGULARIZER_OPTIONS[name]:
            takers.setdefault(option, []).append(name)
    regularized = tuple(name for name in REGULARIZER_NAMES if name != "none")
    return (*(Option(flag, "regularizer", tuple(names), flag) for flag, names in takers.items()),
            Option("regularizer_start_epoch", "regularizer", regularized),
            Option("regularizer_end_epoch", "regularizer", regularized))


_DIAGNOSTICS_OPTIONS = (
    Option("diagnostics_every", "diagnostics", DIAGNOSTIC_NAMES),
    Option("scale_invariant_only", "diagnostics", DIAGNOSTIC_NAMES),
    Option("momentum_probe_examples", "diagnostics", ("momentum",)),
    Option("margin_samples", "diagnostics", ("margins",)),
    Option("margin_normalization", "diagnostics", ("margins",)),
    Option("save_margins", "diagnostics", ("margins",)),
)

OPTIONS: tuple[Option, ...] = (*_OPTIMIZER_AND_SCHEDULE_OPTIONS, *_regularizer_options(), *_DIAGNOSTICS_OPTIONS)


def _chosen(config: RunConfig, choice: str, phase2: bool) -> tuple[str, ...]:
    if choice == "diagnostics":
        return tuple(config.diagnostics)
    if phase2:
        return (getattr(config, f"phase2_{choice}"),) if config.transition_epoch > 0 else ()
    if choice in ("optimizer", "lr_schedule") and config.transition_epoch > 0:
        return getattr(config, choice), getattr(config, f"phase2_{choice}")  # Shared options serve both phases.
    return (getattr(config, choice),)


def applies(option: Option, config: RunConfig, *, phase2: bool = False) -> bool:
    """Whether `config`'s run reads `option` (phase 2's own copy of it with `phase2`)."""
    if phase2 and not option.per_phase:
        raise ValueError(f"--{option.flag} has no phase 2 copy")
    chosen = _chosen(config, option.choice, phase2)
    if option.per_phase and not phase2:
        chosen = chosen[:1]  # Phase 1's own copy: only phase 1's choice reads it.
    return any(value in option.values for value in chosen)


def flag_rules() -> list[tuple[str, Any, str]]:
    """(flag, applies(config), requirement) for every option flag, phase 2's copies included."""
    rules = []
    for option in OPTIONS:
        rules.append((option.flag, lambda c, o=option: applies(o, c), option.requirement()))
        if option.per_phase:
            rules.append((f"phase2_{option.flag}", lambda c, o=option: applies(o, c, phase2=True),
                          option.requirement(phase2=True)))
    return rules


def builder_arguments(choice: str, value: str, phase: Any, config: RunConfig) -> dict[str, Any]:
    """The arguments the builder of `choice`=`value` takes from the table: per-phase options from `phase` (whose
    fields have the options' names), the others from `config`."""
    return {option.argument: getattr(phase if option.per_phase else config, option.flag)
            for option in OPTIONS if option.choice == choice and value in option.values and option.argument}
