"""The one table of which options belong to which choice, against the builders, the phases and the flags."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from tfregimes.config import options
from tfregimes.config.run_config import RunConfig, field_names
from tfregimes.diagnostics.adapters import TRAINING_DIAGNOSTICS
from tfregimes.optim import OPTIMIZERS, SCHEDULES, build_schedule
from tfregimes.steps import REGULARIZERS, regularizer_options
from tfregimes.training.phases import Phase, optimizer_arguments, phases_from_config, schedule_arguments


def test_every_row_names_a_flag_and_a_choice_value_that_exist():
    fields = set(field_names())
    phase_fields = {field.name for field in dataclasses.fields(Phase)}
    known = {"optimizer": set(OPTIMIZERS.names()), "lr_schedule": set(SCHEDULES.names()),
             "regularizer": set(REGULARIZERS.names())}
    for option in options.OPTIONS:
        assert option.flag in fields, option
        assert set(option.values) <= known.get(option.choice, set(option.values)), option
        if option.per_phase:
            assert option.flag in phase_fields and f"phase2_{option.flag}" in fields, option


def test_optimizer_rows_match_what_each_optimizer_builder_takes():
    for option in (o for o in options.OPTIONS if o.choice == "optimizer"):
        for name in OPTIMIZERS.names():
            takes = option.argument in inspect.signature(OPTIMIZERS.get(name)).parameters
            assert takes == (name in option.values), (option.flag, name)


def test_schedule_rows_are_arguments_of_build_schedule():
    parameters = inspect.signature(build_schedule).parameters
    for option in (o for o in options.OPTIONS if o.choice == "lr_schedule" and o.argument):
        assert option.argument in parameters, option


def test_the_tables_names_are_the_registries():
    # The table imports no TensorFlow, so it writes these names rather than reading the registries.
    assert options.REGULARIZER_NAMES == tuple(REGULARIZERS.names())
    assert options.DIAGNOSTIC_NAMES == tuple(TRAINING_DIAGNOSTICS.names())
    assert options.REGULARIZER_OPTIONS == {name: tuple(regularizer_options(name)) for name in REGULARIZERS.names()}


def test_regularizer_rows_are_the_steps_own_options():
    rows = {o.flag: set(o.values) for o in options.OPTIONS if o.choice == "regularizer" and o.argument}
    expected: dict[str, set[str]] = {}
    for name in REGULARIZERS.names():
        for option in regularizer_options(name):
            expected.setdefault(option, set()).add(name)
    assert rows == expected and "sam_rho" in rows and rows["fisher_beta"] == {"fisher"}


@pytest.mark.parametrize("optimizer, expected", [
    ("sgd", {"momentum": 0.8, "nesterov": True, "decoupled_weight_decay": 0.01}),
    ("adam", {"decoupled_weight_decay": 0.01}),
    ("adamw", {"decoupled_weight_decay": 0.01}),
    ("lars", {"momentum": 0.8, "trust_coefficient": 0.02, "weight_decay": 5e-4}),
])
def test_optimizer_arguments_come_from_the_table(optimizer, expected):
    config = RunConfig(optimizer=optimizer, momentum=0.8, nesterov=True, decoupled_weight_decay=0.01,
                       lars_trust_coefficient=0.02, weight_decay=5e-4)
    assert optimizer_arguments(phases_from_config(config)[0], config) == expected


@pytest.mark.parametrize("schedule, expected", [
    ("constant", {}),
    ("step", {"boundaries": (3.0, 5.0), "decay": 0.2}),
    ("cosine", {"min_lr": 1e-4}),
    ("poly", {"min_lr": 1e-4, "power": 2.0}),
    ("explore", {"decay": 0.2, "min_lr": 1e-4, "decay_mode": "linear", "transition_epochs": 2.0,
                 "decay_interval_epochs": 1.0}),
])
def test_schedule_arguments_come_from_the_table(schedule, expected):
    config = RunConfig(epochs=10, transition_epoch=8, lr_schedule=schedule, lr_boundaries=(5.0, 7.0), lr_decay=0.2,
                       min_lr=1e-4, lr_power=2.0, exploration_decay="linear", transition_epochs=2.0,
                       decay_interval_epochs=1.0, phase2_lr_schedule="step", phase2_lr_boundaries=(9.0,),
                       learning_rate=0.3)
    first, second = phases_from_config(config)
    assert schedule_arguments(first, config) == {"base_lr": 0.3, "total_epochs": 8, "warmup_epochs": 0.0,
                                                 **{k: v for k, v in expected.items() if k != "boundaries"},
                                                 **({"boundaries": (5.0, 7.0)} if schedule == "step" else {})}
    # Phase 2's boundaries are its own, counted from its start; the shared decay serves it too.
    assert schedule_arguments(second, config) == {"base_lr": config.phase2_learning_rate, "total_epochs": 2,
                                                  "boundaries": (1.0,), "decay": 0.2}


def _applies(flag: str, **config) -> bool:
    rules = {name: applies for name, applies, _ in options.flag_rules()}
    return rules[flag](RunConfig(**config))


def test_flag_rules_follow_each_phase_and_the_shared_options():
    assert _applies("momentum", optimizer="lars") and not _applies("momentum", optimizer="adam")
    # Phase 1's own copy is read by phase 1's choice only; phase 2's copy by phase 2's.
    assert not _applies("momentum", optimizer="adam", epochs=4, transition_epoch=2, phase2_optimizer="sgd")
    assert _applies("phase2_momentum", optimizer="adam", epochs=4, transition_epoch=2, phase2_optimizer="sgd")
    assert not _applies("phase2_momentum", epochs=4, transition_epoch=2, phase2_optimizer="adamw")
    assert not _applies("phase2_momentum", transition_epoch=0)
    # A shared option serves whichever phase uses a schedule that reads it.
    assert _applies("min_lr", lr_schedule="step", epochs=4, transition_epoch=2, phase2_lr_schedule="cosine")
    assert not _applies("min_lr", lr_schedule="step", phase2_lr_schedule="cosine")
    assert _applies("margin_samples", diagnostics=("angular", "margins"))
    assert not _applies("margin_samples", diagnostics=("angular",))
    assert _applies("regularizer_end_epoch", regularizer="sam") and not _applies("sam_rho", regularizer="fisher")


def test_requirements_read_as_the_flags_that_enable_them():
    requirements = {name: requirement for name, _, requirement in options.flag_rules()}
    assert requirements["min_lr"] == "--lr_schedule=cosine, poly, explore or plateau"
    assert requirements["phase2_nesterov"] == "--phase2_optimizer=sgd"
    assert requirements["regularizer_start_epoch"] == "--regularizer"
    assert requirements["diagnostics_every"] == "--diagnostics"
    assert requirements["save_margins"] == "--diagnostics=margins"
