"""Command-line flags of `python -m tfregimes.train` on absl's global FLAGS, grouped for --help.

The flags are defined once, in `tfregimes.training.run_flags` (and their rules in `run_flag_rules`), on any
FlagValues: here the global one the CLIs parse; the sweep library checks its points on a private one.
"""

from __future__ import annotations

from absl import flags

from tfregimes.cli import common as cli_common
from tfregimes.config import run_config as config_lib
from tfregimes.training import run_flags

FLAGS = flags.FLAGS
HELP_GROUPS = cli_common.HelpGroups()  # What --help shows, by concern: a group per section of the definitions.
run_flags.define_run_flags(FLAGS, begin_group=HELP_GROUPS.begin)
HELP_GROUPS.end()


def config_from_flags() -> config_lib.RunConfig:
    """The RunConfig of the parsed command line."""
    return run_flags.config_from_flags(FLAGS)
