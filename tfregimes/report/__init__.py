"""Reports: `build_report(paths, output_dir, ...)` turns a run directory, or a sweep / several runs, into
report.md (or .html) with figures, the results table and the measure ranking (τ, partial τ given the training
loss, Ψ, and the training loss as a baseline). CLI: `python -m tfregimes.report`
(tfregimes/cli/report.py)."""

from tfregimes.report.build import (
    FORMATS,
    Report,
    build_report,
    default_x,
    minimum_metrics_table,
)
from tfregimes.report.ranking import rank_measures, ranking_cells

__all__ = ["FORMATS", "Report", "build_report", "default_x", "minimum_metrics_table", "rank_measures", "ranking_cells"]
