"""python -m tfregimes.results SWEEP_OR_RUN_DIRS... [--output=runs.csv] [--group_by=FLAG[,FLAG]] [--columns=...]

One row per run (varied flags, final metrics, evaluate metrics, final training diagnostics, diverged, wall time,
command, stop/...), written as CSV with --output; prints a Markdown table of mean ± std over seeds per group (default:
all varied flags except the seed). Diverged runs are counted per group and left out of the statistics. A run that
ended without reaching its --stop_at_train_loss / --stop_at_train_accuracy target gets a `!` line under the table.
A run whose files cannot be read (state corrupt, e.g. a truncated metrics.json) is counted in its group, left out of
the statistics and named on a warning line (stderr). So is a group whose runs were trained on different data (their
`data` digests differ), or groups that differ in data while no grouping flag names it. A directory with no run in
it is skipped, with a note.

Exit status: 0; 1 when a run is corrupt; 2 for bad arguments.
"""

from __future__ import annotations

import sys

from absl import app, flags

from tfregimes.base.run_files import write_atomically
from tfregimes.cli import common as cli_common
from tfregimes.results import collect, corrupt_runs, data_mixes, group_summary, short_of_target, summary_markdown

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
    for path in df.attrs.get("skipped", []):
        print(f"note: {path}: no run in it (no flags.cfg, metrics.json or sweep.json), skipped", file=sys.stderr)
    states = df["state"].value_counts().to_dict()
    print(f"{len(df)} runs ({', '.join(f'{n} {state}' for state, n in states.items())}); varied flags: "
          f"{', '.join(df.attrs['varied_flags']) or 'none'}")
    print(summary_markdown(summary))
    for line in short_of_target_lines(df):
        print(line)
    if FLAGS.output:
        write_atomically(FLAGS.output, df.to_csv(index=False))
        print(f"written to {FLAGS.output}")
    corrupt = corrupt_runs(df)
    for row in corrupt.to_dict("records"):
        print(f"warning: run {row['run']} ({row['run_dir']}) is corrupt: {row['reason']}; counted in its group, left "
              "out of the statistics", file=sys.stderr)
    for text in data_mixes(df, summary.attrs["group_by"]):
        print(f"warning: {text}", file=sys.stderr)
    return 1 if len(corrupt) else 0


def short_of_target_lines(df) -> list[str]:
    """A `!` line per run that ended without reaching its stop's target: it is in the table, but not at the
    training loss or accuracy of the runs that reached theirs."""
    short = short_of_target(df)
    if not len(short):
        return []
    lines = [f"! {len(short)} of {len(df)} runs did not reach their stop target (not at equal training loss or "
             "accuracy: compare them with care):"]
    for row in short.to_dict("records"):
        if row["stop/criterion"] == "train_loss":
            rule, read = f"train loss <= {row['stop/target']:g}", f"clean loss {row['stop/clean_loss']:.4g}"
        else:
            rule, read = (f"train accuracy >= {row['stop/target']:g}",
                          f"clean accuracy {row['stop/clean_accuracy']:.4g}")
        lines.append(f"!   {row['run']}: {rule} not reached in {row['epochs_run']:g} epochs ({read})")
    return lines


def entry_point() -> None:
    cli_common.run(main, doc=__doc__)


if __name__ == "__main__":
    entry_point()
