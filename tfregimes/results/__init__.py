"""Results of many runs in one table: `collect(paths)` (one row per run) and `group_summary` (mean ± std over
seeds per group). CLI: `python -m tfregimes.results` (tfregimes/cli/results.py)."""

from tfregimes.results.collect import (
           collect,
           corrupt_runs,
           evaluation_metrics,
           frame,
           measure_columns,
           short_of_target,
)
from tfregimes.results.runs import (
           RunRecord,
           flags_differing_from_defaults,
           load_runs,
           varied_flags,
)
from tfregimes.results.table import data_mixes, group_summary, markdown_table, summary_markdown

__all__ = ["RunRecord", "collect", "corrupt_runs", "data_mixes", "evaluation_metrics", "flags_differing_from_defaults",
           "frame", "group_summary", "load_runs", "markdown_table", "measure_columns", "short_of_target",
           "summary_markdown", "varied_flags"]
