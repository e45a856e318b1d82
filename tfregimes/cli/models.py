"""`python -m tfregimes.models`: a table (or `--json`) of every registered model, or one
configuration with `--model=NAME [--num_classes=K] [--input_shape=H,W,C]`.

The flags live in their own `FlagValues`, not absl's global FLAGS, so that importing this module
(the tests do) cannot collide with the trainer's `--model` flag.
"""

from __future__ import annotations

import json
import sys

import keras
from absl import flags

from tfregimes.models.core import model_names
from tfregimes.models.listing import describe_model, format_table

LISTING_FLAGS = flags.FlagValues()
flags.DEFINE_bool("json", False, "Print JSON (a list of objects with name, paper, input_shape, "
                  "num_classes, params, trainable_params) instead of a table.",
                  flag_values=LISTING_FLAGS)
flags.DEFINE_enum("model", None, model_names(), "Describe only this model.",
                  flag_values=LISTING_FLAGS)
flags.DEFINE_integer("num_classes", None, "Number of classes (default: the model's own).",
                     lower_bound=1, flag_values=LISTING_FLAGS)
flags.DEFINE_list("input_shape", None, "Input shape as comma-separated sizes, e.g. 32,32,3 "
                  "(default: the model's own).", flag_values=LISTING_FLAGS)
flags.DEFINE_bool("help", False, "Show this help.", short_name="h", flag_values=LISTING_FLAGS)


@flags.validator("input_shape", message="--input_shape must be positive integers, e.g. 32,32,3",
                 flag_values=LISTING_FLAGS)
def _valid_input_shape(value):
    return value is None or all(part.strip().isdigit() and int(part) > 0 for part in value)


@flags.multi_flags_validator(["model", "num_classes", "input_shape"],
                             message="--num_classes and --input_shape need --model",
                             flag_values=LISTING_FLAGS)
def _configuration_needs_model(values):
    return values["model"] is not None or (
        values["num_classes"] is None and values["input_shape"] is None)


def run(argv: list[str]) -> str:
    """Parses `argv` (program name first) and returns what the command prints.

    Raises absl's `flags.Error` on an unknown flag or a bad value.
    """
    LISTING_FLAGS.unparse_flags()  # a second call must not inherit the first call's values
    extra = LISTING_FLAGS(argv)
    if len(extra) > 1:
        raise flags.Error(f"unexpected arguments: {extra[1:]}")
    if LISTING_FLAGS.help:
        return f"{__doc__.split(chr(10) * 2)[0]}\n\n{LISTING_FLAGS.get_help()}"
    input_shape = (None if LISTING_FLAGS.input_shape is None
                   else tuple(int(d) for d in LISTING_FLAGS.input_shape))
    names = [LISTING_FLAGS.model] if LISTING_FLAGS.model else model_names()
    rows = []
    for name in names:
        rows.append(describe_model(name, input_shape=input_shape,
                                   num_classes=LISTING_FLAGS.num_classes))
        keras.backend.clear_session()  # listing every model should not keep every one alive
    return json.dumps(rows, indent=2) if LISTING_FLAGS.json else format_table(rows)


def main() -> int:
    try:
        print(run(sys.argv))
    except flags.Error as error:
        print(f"error: {error}\n(see --help)", file=sys.stderr)
        return 2
    return 0


def entry_point() -> None:
    """`python -m tfregimes.models`."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
