"""Benchmarks of training cost: `python -m tfregimes.benchmark --suite=regularizers` (training-step variants) and
`--suite=diagnostics` (the per-epoch overhead of the training-time diagnostics)."""

from tfregimes.benchmark.diagnostics_overhead import (
                                                      DiagnosticsSetting,
                                                      DiagnosticsTiming,
                                                      SettingError,
                                                      diagnostics_report,
                                                      diagnostics_result,
                                                      measurement_period,
                                                      time_diagnostics,
)
from tfregimes.benchmark.suites import BASELINE, SUITES, Variant, suite_variants
from tfregimes.benchmark.timing import Setting, Timing, ratios, report, time_variants

__all__ = ["BASELINE", "DiagnosticsSetting", "DiagnosticsTiming", "SUITES", "Setting", "SettingError", "Timing",
           "Variant", "diagnostics_report", "diagnostics_result", "measurement_period", "ratios", "report",
           "suite_variants", "time_diagnostics", "time_variants"]
