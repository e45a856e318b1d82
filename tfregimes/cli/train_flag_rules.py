"""The rules of the training flags (`tfregimes.training.run_flag_rules`) registered on absl's global FLAGS, where
`train_flags` defines the flags: a bad command line of `python -m tfregimes.train` fails at parse time, naming the
flag, and `check_flag_combinations` runs right after, on the resolved RunConfig."""

from __future__ import annotations

from absl import flags

from tfregimes.cli import train_flags  # noqa: F401  (defines the flags these rules check: import it first)
from tfregimes.config import run_config as config_lib
from tfregimes.training import run_flag_rules
from tfregimes.training.run_flag_rules import InvalidFlagsError, parse_run_config  # noqa: F401  (the CLIs' names)

FLAGS = flags.FLAGS
run_flag_rules.register_run_flag_rules(FLAGS)


def check_flag_combinations(config: config_lib.RunConfig) -> None:
    """Raises flags.ValidationError for a flag the run would ignore, or options that do not fit together."""
    run_flag_rules.check_flag_combinations(config, FLAGS)
