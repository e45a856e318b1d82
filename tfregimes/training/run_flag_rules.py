"""Rules on the training flags (`run_flags`) that a single flag definition cannot express, and the parse of a
training command line on a private FlagValues.

Single-value and cross-flag validators run when absl parses the command line; `check_flag_combinations` runs right
after, on the resolved RunConfig, and rejects flags the run would silently ignore and options that do not fit
together, before any data or model is built. `parse_run_config` applies both, as `python -m tfregimes.train` does,
on a FlagValues of its own: a sweep checks every point before any starts, from the CLI or from a script, without
touching the caller's absl flags.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Mapping
from typing import Any

from absl import flags

from tfregimes.config import run_config as config_lib
from tfregimes.config.options import flag_rules
from tfregimes.optim import boundary_epochs, parse_boundary
from tfregimes.training.phases import build_phase_optimizer, phases_from_config
from tfregimes.training.run_flags import (
    DATASET_CHOICES,
    BoundFlags,
    config_from_flags,
    define_run_flags,
    is_dataset_name,
)


def _all_numbers(kind):
    def check(values):
        try:
            return all(kind(v) >= 0 for v in values)
        except ValueError:
            return False
    return check


def _all_boundaries(values) -> bool:
    try:
        return all(not isinstance(b, float) or b >= 0 for b in map(parse_boundary, values))
    except ValueError:
        return False


def _valid_profile_batch(text: str) -> bool:
    if not text:
        return True
    parts = text.split(",")
    return len(parts) == 2 and all(p.strip().isdigit() for p in parts) and 0 < int(parts[0]) <= int(parts[1])


def _increasing_inside(texts, low, high) -> bool:
    try:
        boundaries = list(boundary_epochs([parse_boundary(b) for b in texts], high))
    except ValueError:
        return True  # Reported by the single-flag validator.
    return all(low < b < high for b in boundaries) and boundaries == sorted(set(boundaries))


def register_run_flag_rules(flag_values: flags.FlagValues) -> None:
    """Registers every validator of the training flags on `flag_values` (where `define_run_flags` defined them)."""
    fv = BoundFlags(flag_values)

    # --- Rules on single values that absl cannot express ----------------------------------------------------------
    fv.register_validator("dataset", is_dataset_name, message=f"must be one of {DATASET_CHOICES}")

    # absl's float parser takes nan and inf, which pass every bound (NaN compares false); no training flag means one.
    for name in config_lib.field_names():
        if isinstance(flag_values[name].parser, flags.FloatParser):
            fv.register_validator(name, lambda value: value is None or math.isfinite(value),
                                  message="must be a finite number (not nan or inf)")

    fv.register_validator("hidden_sizes", lambda v: len(v) > 0 and _all_numbers(int)(v) and all(int(x) > 0 for x in v),
                          message="must be a comma-separated list of positive integers, e.g. 256,128")

    fv.register_validator("lr_boundaries", _all_boundaries,
                          message="must be a comma-separated list of epochs (150,225) or of shares of the run inside "
                                  "(0%, 100%) (50%,75%)")

    fv.register_validator("phase2_lr_boundaries", _all_numbers(float),
                          message="must be a comma-separated list of non-negative epochs, e.g. 150,225")

    fv.register_validator("profile_batch", _valid_profile_batch,
                          message="must be empty or N,M with 0 < N <= M, e.g. 10,20")

    # --- Rules across flags ---------------------------------------------------------------------------------------
    @fv.multi_flags_validator(["lr_boundaries", "lr_schedule", "epochs", "transition_epoch"],
                              message="--lr_boundaries must be increasing epochs inside (0, --epochs), or inside "
                                      "(0, --transition_epoch) with two phases; to follow the run's length, give "
                                      "them as shares of it, e.g. 50%,75%")
    def _boundaries_inside_training(values):
        return values["lr_schedule"] != "step" or _increasing_inside(
            values["lr_boundaries"], 0, values["transition_epoch"] or values["epochs"])

    @fv.multi_flags_validator(["phase2_lr_boundaries", "epochs", "transition_epoch"],
                              message="--phase2_lr_boundaries must be increasing epochs inside "
                                      "(--transition_epoch, --epochs)")
    def _phase2_boundaries_inside_phase2(values):
        return _increasing_inside(values["phase2_lr_boundaries"], values["transition_epoch"], values["epochs"])

    @fv.multi_flags_validator(["transition_epoch", "epochs"],
                              message="--transition_epoch must be 0 (one phase) or inside (0, --epochs)")
    def _transition_inside_training(values):
        return values["transition_epoch"] < values["epochs"]

    @fv.multi_flags_validator(["regularizer_start_epoch", "regularizer_end_epoch", "epochs"],
                              message="--regularizer_start_epoch must be before --regularizer_end_epoch (0: the end) "
                                      "and --epochs")
    def _regularizer_window_inside_training(values):
        end = values["regularizer_end_epoch"] or values["epochs"]
        return values["regularizer_start_epoch"] < end <= values["epochs"]

    @fv.multi_flags_validator(["batch_size", "grad_accum_steps", "regularizer", "fisher_subbatches", "sam_subbatches"],
                              message="the (micro-)batch, --batch_size / --grad_accum_steps, must be a multiple of "
                                      "--fisher_subbatches (fisher: sub-batches of the global batch) or "
                                      "--sam_subbatches (sam: per replica)")
    def _batch_splits_into_sub_batches(values):
        parts = {"fisher": values["fisher_subbatches"], "sam": values["sam_subbatches"]}.get(values["regularizer"], 1)
        return (values["batch_size"] // values["grad_accum_steps"]) % parts == 0

    @fv.multi_flags_validator(["regularizer", "grad_accum_steps"],
                              message="--regularizer=proximal takes K optimizer steps per batch, which gradient "
                                      "accumulation cannot split; set --grad_accum_steps=1")
    def _proximal_without_accumulation(values):
        return values["regularizer"] != "proximal" or values["grad_accum_steps"] == 1

    @fv.multi_flags_validator(["strategy", "jit_compile"],
                              message="--jit_compile does not work with --strategy=mirrored here; drop one of them")
    def _no_xla_under_mirrored(values):
        return not (values["strategy"] == "mirrored" and values["jit_compile"])

    @fv.multi_flags_validator(["deterministic", "jit_compile"],
                              message="--jit_compile needs --nodeterministic: TensorFlow's op determinism turns XLA "
                                      "off (Keras would train without it while flags.cfg said jit_compile=true)")
    def _xla_only_without_op_determinism(values):
        return not (values["deterministic"] and values["jit_compile"])

    @fv.multi_flags_validator(["batch_size", "grad_accum_steps"],
                              message="--batch_size must be a multiple of --grad_accum_steps")
    def _batch_splits_into_micro_batches(values):
        return values["batch_size"] % values["grad_accum_steps"] == 0

    @fv.multi_flags_validator(["stop_at_train_loss", "stop_at_train_accuracy"],
                              message="--stop_at_train_loss and --stop_at_train_accuracy are both set; a run stops at "
                                      "one target: set at most one of them")
    def _one_stop(values):
        return not (values["stop_at_train_loss"] and values["stop_at_train_accuracy"])

    @fv.multi_flags_validator(["confusion_size", "train_subset"],
                              message="--confusion_size needs --train_subset: the confusion images come from the rest "
                                      "of the training split, and the train_* metrics are on the subset")
    def _confusion_beside_a_subset(values):
        return values["confusion_size"] == 0 or values["train_subset"] > 0

    @fv.multi_flags_validator(["train_subset", "batch_size"],
                              message="--train_subset must be 0 (all) or at least --batch_size examples")
    def _subset_holds_a_batch(values):
        return values["train_subset"] == 0 or values["train_subset"] >= values["batch_size"]


# --- Flags that would be silently ignored, and options that do not fit together --------------------------------
# Options of a choice (optimizer, schedule, regularizer, diagnostics) come from tfregimes.config.options; two-phase
# training adds the rest of the phase2_ flags.
_ONLY_WITH = [
    (tuple(name for name in config_lib.field_names() if name.startswith("phase2_")),
     lambda c: c.transition_epoch > 0, "--transition_epoch (two-phase training)"),
    (("stop_check_every", "stop_check_examples"), lambda c: bool(c.stop_at_train_loss or c.stop_at_train_accuracy),
     "--stop_at_train_loss or --stop_at_train_accuracy (a stop at a training target)"),
    *(((flag,), applies, requirement) for flag, applies, requirement in flag_rules()),
]


def check_flag_combinations(config: config_lib.RunConfig, flag_values: flags.FlagValues) -> None:
    """Raises flags.ValidationError for a flag set (to a non-default value) that the run would ignore, and for
    optimizer/schedule options that do not fit together (found by building each phase's optimizer once)."""
    for names, applies, requirement in _ONLY_WITH:
        # A flag set to its default changes nothing (a run's flags.cfg spells out every flag), so only others count.
        given = [f"--{name}" for name in names
                 if flag_values[name].present and flag_values[name].value != flag_values[name].default]
        if given and not applies(config):
            raise flags.ValidationError(f"{', '.join(given)} only applies with {requirement}; remove it or set that.")
    for phase in phases_from_config(config):
        try:
            build_phase_optimizer(phase, config, steps_per_epoch=1000)  # A nominal epoch: no data is loaded.
        except ValueError as error:
            raise flags.ValidationError(f"the flags of phase {phase.index + 1} do not fit together: {error}") from None


class InvalidFlagsError(ValueError):
    """A command line `tfregimes.train` would refuse; the message names the flag."""


@functools.cache
def _private_flags() -> flags.FlagValues:
    flag_values = flags.FlagValues()
    define_run_flags(flag_values)
    register_run_flag_rules(flag_values)
    return flag_values


_PARSE_LOCK = threading.Lock()  # One FlagValues: one parse at a time.


def parse_run_config(argv: list[str]) -> config_lib.RunConfig:
    """The RunConfig `python -m tfregimes.train ARGV` would run, checked as its CLI checks it (the validators at
    parse time, then `check_flag_combinations`), on a private FlagValues: the process's absl FLAGS are neither read
    nor changed. ARGV holds `--name=value` arguments. Raises InvalidFlagsError naming the flag (e.g. for each point
    of a sweep before any starts)."""
    with _PARSE_LOCK:
        flag_values = _private_flags()
        flag_values.unparse_flags()  # A fresh state: defaults, nothing `present`.
        try:
            rest = flag_values(["tfregimes.train", *argv])
            if len(rest) > 1:
                raise InvalidFlagsError(f"unexpected arguments {rest[1:]}; every setting is a --flag")
            config = config_from_flags(flag_values)
            check_flag_combinations(config, flag_values)
        except flags.Error as error:
            raise InvalidFlagsError(str(error)) from None
        finally:
            flag_values.unparse_flags()
    return config


def canonical_flag_texts(values: Mapping[str, Any]) -> dict[str, str]:
    """Each training flag's value as text, as absl parses it back (`0.050` -> `0.05`, True -> `true`, (16, 8) ->
    `16,8`): the text `python -m tfregimes.sweep` records for a flag given on its command line, so that a spec built
    in Python equals the one its shell command builds. Raises InvalidFlagsError for an unknown flag or a value absl
    refuses; rules across flags are left to `parse_run_config`."""
    with _PARSE_LOCK:
        flag_values = _private_flags()
        texts = {}
        try:
            for name, value in values.items():
                if name not in flag_values:
                    raise InvalidFlagsError(f"--{name} is not a flag of tfregimes.train")
                text = value if isinstance(value, str) else config_lib.format_flag_value(value)
                try:
                    flag_values[name].parse(text)
                except flags.Error as error:
                    raise InvalidFlagsError(f"--{name}={text}: {error}") from None
                texts[name] = config_lib.format_flag_value(flag_values[name].value)
        finally:
            flag_values.unparse_flags()
    return texts
