"""python -m tfregimes.report PATH... [--output=DIR] [--x=FLAG] [--format=md|html|md,html]

PATH is a run directory (its curves, learning rate, training diagnostics and metrics at the minimum) or one or more
sweep directories / run directories (results table, quantities against --x with seeds as error bars, learning
curves per group, measure ranking: τ, partial τ given the training loss and Ψ against each generalization gap,
with the training loss as a baseline). Writes DIR/report.md (or .html)
and DIR/figures/*.png; DIR defaults to PATH/report for one PATH. A run whose files cannot be read (state corrupt, e.g.
a truncated metrics.json) is listed in the report, left out of its statistics and named on a warning line (stderr).

Exit status: 0; 1 when a run is corrupt; 2 for bad arguments.
"""

from __future__ import annotations

import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

from tfregimes.cli import common as cli_common
from tfregimes.report import FORMATS, build_report, ranking_cells
from tfregimes.report.ranking import GAPS
from tfregimes.results import markdown_table

flags.DEFINE_string("output", "", "Folder of the report (default: PATH/report when there is one PATH).")
flags.DEFINE_string("x", "", "Sweep axis: a varied flag (default: the one with the most values, seed excluded).")
flags.DEFINE_list("format", ["md"], f"One or more of {', '.join(FORMATS)}.")
flags.register_validator("format", lambda values: bool(values) and set(values) <= set(FORMATS),
                         message=f"must be a comma-separated list of {', '.join(FORMATS)}")
FLAGS = flags.FLAGS


def main(argv):
    cli_common.quiet_python_logs()
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give a run directory, or one or more sweep or run directories")
    if not FLAGS.output and len(paths) > 1:
        raise app.UsageError("--output=DIR is needed with several paths")
    output = FLAGS.output or os.path.join(paths[0], "report")
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "tfregimes.report", *sys.argv[1:]])
    start = time.perf_counter()
    try:
        report = build_report(paths, output, x=FLAGS.x or None, formats=tuple(FLAGS.format), command=command)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in report.documents.values():
        print(f"report   {path}")
    for path in report.figures.values():
        print(f"figure   {path}")
    if "ranking" in report.tables:
        for gap in GAPS:
            print(f"\nmeasure ranking against {gap}:\n{markdown_table(*ranking_cells(report.tables['ranking'], gap))}")
    print(f"built in {time.perf_counter() - start:.1f} s")
    for name, reason in report.corrupt.items():
        print(f"warning: run {name} is corrupt: {reason}; listed in the report, left out of its statistics",
              file=sys.stderr)
    return 1 if report.corrupt else 0


def entry_point() -> None:
    cli_common.run(main, doc=__doc__)


if __name__ == "__main__":
    entry_point()
