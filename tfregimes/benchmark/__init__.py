"""Benchmarks of training-step cost: `python -m tfregimes.benchmark --suite=regularizers`."""

from tfregimes.benchmark.suites import BASELINE, SUITES, Variant, suite_variants
from tfregimes.benchmark.timing import Setting, Timing, ratios, report, time_variants

__all__ = ["BASELINE", "SUITES", "Setting", "Timing", "Variant", "ratios", "report", "suite_variants",
           "time_variants"]
