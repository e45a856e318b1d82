"""python -m tfregimes.train [--flagfile=flags/NAME.cfg] [--flag=value ...]

Trains one run and prints a summary. With no flags: a small CNN on scikit-learn's bundled 8x8 digits, which needs
no download and takes well under three minutes on a laptop CPU. `--help` lists every flag, by concern.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Hide TensorFlow's C++ start-up chatter (no GPU found, etc.).

from absl import app, flags  # noqa: E402

from tfregimes.base.run_dir import RunDirectoryBusyError  # noqa: E402
from tfregimes.cli import common as cli_common  # noqa: E402  (define the flags)
from tfregimes.cli import train_flag_rules, train_flags
from tfregimes.cli.summary import run_summary  # noqa: E402
from tfregimes.data import DatasetUnavailableError, InvalidDatasetError  # noqa: E402
from tfregimes.training import RunConfigError, train_and_evaluate  # noqa: E402
from tfregimes.training.distribution import prepare_devices  # noqa: E402


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --help)")
    cli_common.quiet_python_logs()
    config = train_flags.config_from_flags()
    strategy = prepare_devices(config.num_cpu_devices, config.strategy)  # Before the checks create any variable.
    try:
        train_flag_rules.check_flag_combinations(config)
    except flags.ValidationError as error:
        print(f"FATAL Flags parsing error: {error}", file=sys.stderr)
        return 1
    try:
        result = train_and_evaluate(config, command=["python", "-m", "tfregimes.train", *sys.argv[1:]],
                                    strategy=strategy)
    except (DatasetUnavailableError, InvalidDatasetError, RunConfigError, RunDirectoryBusyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # A read-only --model_dir, a full disk: nothing is lost, the run can resume.
        print(f"error: {cli_common.describe_os_error(error)}", file=sys.stderr)
        return 2
    print(run_summary(result.metrics, already_complete=result.already_complete))
    return 0


def entry_point() -> None:
    """`python -m tfregimes.train`."""
    cli_common.run(main, train_flags.HELP_GROUPS, doc=__doc__)


if __name__ == "__main__":
    entry_point()
