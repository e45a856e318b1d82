"""The one place where runs are compared: summaries over seeds, effects with 95 % confidence intervals, rank
correlations of a measure with generalization (τ_b, partial τ given the training loss, granulated Ψ), and the
verdict rule (supports / contradicts / inconclusive / not comparable). numpy, scipy and pandas only."""

from tfregimes.analysis.estimates import (
    Effect,
    Summary,
    exact_effect,
    mean_effect,
    paired_difference,
    summarize,
    unpaired_difference,
)
from tfregimes.analysis.rank import Granulated, granulated_kendall, kendall_tau, partial_kendall_tau
from tfregimes.analysis.verdict import (
    CONTRADICTS,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    SUPPORTS,
    WORDS,
    Comparability,
    Verdict,
    comparable,
    same_stop_target,
    verdict,
)

__all__ = ["CONTRADICTS", "INCONCLUSIVE", "NOT_COMPARABLE", "SUPPORTS", "WORDS", "Comparability", "Effect",
           "Granulated", "Summary", "Verdict", "comparable", "exact_effect", "granulated_kendall", "kendall_tau",
           "mean_effect", "paired_difference", "partial_kendall_tau", "same_stop_target", "summarize",
           "unpaired_difference", "verdict"]
