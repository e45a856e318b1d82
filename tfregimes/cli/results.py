"""python -m tfregimes.results SWEEP_OR_RUN_DIRS... [--output=runs.csv] [--group_by=FLAG[,FLAG]] [--columns=...]

One row per run (varied flags, final metrics, evaluate metrics, final training diagnostics, diverged, wall time,
command), written as CSV with --output; prints a Markdown table of mean ± std over seeds per group (default: all
varied flags except the seed). Diverged runs are counted per group and left out of the statistics.
"""

from __future__ import annotations

import sys

from absl import app, flags

from tfregimes.base.run_dir import write_atomically
from tfregimes.cli import common as cli_common
from tfregimes.results import collect, group_summary, summary_markdown

flags.DEFINE_string("output", "", "Write one row per run as CSV to this file.")
flags.DEFINE_list("group_by", None, "Flags to group by (default: every varied flag except --seed); "
                  "--group_by= (empty) puts all runs in one group.")
flags.DEFINE_list("columns", None, "Columns to summarize (default: final metrics, generalization gaps, "
                  "minimum metrics and final training diagnostics).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more sweep or run directories")
    try:
        df = collect(argv[1:])
        summary = group_summary(df, FLAGS.group_by, FLAGS.columns)
    except (ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    states = df["state"].value_counts().to_dict()
    print(f"{len(df)} runs ({', '.join(f'{n} {state}' for state, n in states.items())}); varied flags: "
          f"{', '.join(df.attrs['varied_flags']) or 'none'}")
    print(summary_markdown(summary))
    if FLAGS.output:
        write_atomically(FLAGS.output, df.to_csv(index=False))
        print(f"written to {FLAGS.output}")
    return 0


def entry_point() -> None:
    cli_common.run(main)


if __name__ == "__main__":
    entry_point()
