"""Summaries and effects over seeds: mean ± sample std, and a mean (or mean difference) with its 95 % CI.

The one place in tfregimes where a mean ± std or a confidence interval is computed; the results table, the report
and every reproduction script call it. An interval is Student's t below `T_BELOW` values (the bootstrap's
percentiles are too narrow for a handful of seeds) and `scipy.stats.bootstrap`'s BCa interval from there on (no
normality assumed); `Effect.method` says which.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

CONFIDENCE = 0.95
T_BELOW = 20  # Fewer values: Student's t interval; this many or more: the bootstrap's BCa interval.
RESAMPLES = 4999  # Bootstrap resamples (odd, so a percentile is one resample).
SEED = 0  # The bootstrap's generator seed: the same values give the same interval.


def finite_values(values: Iterable[Any]) -> np.ndarray:
    """`values` as a float array without NaN, ±inf and None (a diverged or missing run)."""
    array = np.asarray([math.nan if v is None else v for v in values], dtype=float).ravel()
    return array[np.isfinite(array)]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (ddof = 1; NaN for one value) of the finite values, and their count."""
    mean: float
    std: float
    n: int

    def text(self, scale: float = 1.0, digits: int = 4, counts: bool = True) -> str:
        """'0.9123 ± 0.004 (n = 3)', '0.9123 (one run)', or '—' for none; values times `scale` (100 for %). Without
        `counts` (a table whose own columns count the runs): '0.9123 ± 0.004', '0.9123'."""
        if self.n == 0:
            return "—"
        mean = f"{scale * self.mean:.{digits}g}"
        if self.n == 1:
            return f"{mean} (one run)" if counts else mean
        spread = f"{mean} ± {scale * self.std:.{digits}g}"
        return f"{spread} (n = {self.n})" if counts else spread


def summarize(values: Iterable[Any]) -> Summary:
    kept = finite_values(values)
    return Summary(mean=float(np.mean(kept)) if len(kept) else math.nan,
                   std=float(np.std(kept, ddof=1)) if len(kept) > 1 else math.nan, n=len(kept))


@dataclasses.dataclass(frozen=True)
class Effect:
    """An estimated effect with its confidence interval [low, high]. `n`: the values it rests on (pairs for a paired
    difference, the smaller side for an unpaired one, runs for a rank correlation); `exact`: a deterministic
    computation (no seeds), whose interval is the point itself."""
    name: str  # What is estimated, e.g. "mean test accuracy difference (LB − SB)".
    estimate: float
    low: float
    high: float
    n: int
    method: str  # How the interval was computed, e.g. "t, 4 df" or "bootstrap BCa, 4999 resamples".
    standard_error: float = math.nan
    confidence: float = CONFIDENCE
    exact: bool = False

    def text(self, scale: float = 1.0, digits: int = 3) -> str:
        """'mean difference +1.20 (95 % CI +0.31 to +2.09; t, 4 df; n = 5)'."""
        def number(value: float) -> str:
            return "nan" if math.isnan(value) else f"{scale * value:+.{digits}g}"
        if self.exact:
            return f"{self.name} {number(self.estimate)} (exact: {self.method})"
        return (f"{self.name} {number(self.estimate)} ({100 * self.confidence:g} % CI {number(self.low)} to "
                f"{number(self.high)}; {self.method}; n = {self.n})")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mean_effect(values: Iterable[Any], *, name: str = "mean", reference: float = 0.0,
                confidence: float = CONFIDENCE, resamples: int = RESAMPLES) -> Effect:
    """The mean of `values` minus `reference`, with its CI (t below T_BELOW values, bootstrap BCa from there)."""
    kept = finite_values(values) - reference
    n = len(kept)
    if n == 0:
        return Effect(name, math.nan, math.nan, math.nan, 0, "no values", confidence=confidence)
    mean = float(np.mean(kept))
    if n == 1:
        return Effect(name, mean, math.nan, math.nan, 1, "one value: no interval", confidence=confidence)
    standard_error = float(np.std(kept, ddof=1) / math.sqrt(n))
    if standard_error == 0.0:  # Every value equal: no spread to resample; the interval is the point.
        return Effect(name, mean, mean, mean, n, "all values equal", 0.0, confidence)
    if n < T_BELOW:
        from scipy import stats
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * standard_error
        return Effect(name, mean, mean - half, mean + half, n, f"t, {n - 1} df", standard_error, confidence)
    from scipy import stats
    result = stats.bootstrap((kept,), np.mean, confidence_level=confidence, n_resamples=resamples,
                             method="BCa", random_state=np.random.default_rng(SEED))
    interval = result.confidence_interval
    return Effect(name, mean, float(interval.low), float(interval.high), n,
                  f"bootstrap BCa, {resamples} resamples", standard_error, confidence)


def _paired(a: Mapping | Iterable, b: Mapping | Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned float arrays: mappings (e.g. seed → value) are paired on their common keys, sequences by position;
    pairs where either value is not finite are dropped."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            raise TypeError("paired_difference: pass two mappings (seed -> value) or two sequences, not one of each")
        keys = [key for key in a if key in b]
        first, second = [a[k] for k in keys], [b[k] for k in keys]
    else:
        first, second = list(a), list(b)
        if len(first) != len(second):
            raise ValueError(f"paired_difference: {len(first)} values against {len(second)}; pairs need equal "
                             "lengths (or pass seed -> value mappings)")
    x = np.asarray([math.nan if v is None else v for v in first], dtype=float)
    y = np.asarray([math.nan if v is None else v for v in second], dtype=float)
    kept = np.isfinite(x) & np.isfinite(y)
    return x[kept], y[kept]


def paired_difference(a: Mapping | Iterable, b: Mapping | Iterable, *, name: str = "mean difference",
                      confidence: float = CONFIDENCE, resamples: int = RESAMPLES) -> Effect:
    """Mean of a − b over pairs (the same seed in both settings) with its CI; n is the number of pairs."""
    x, y = _paired(a, b)
    return mean_effect(x - y, name=name, confidence=confidence, resamples=resamples)


def unpaired_difference(a: Iterable, b: Iterable, *, name: str = "difference of means",
                        confidence: float = CONFIDENCE) -> Effect:
    """mean(a) − mean(b) for runs that do not pair by seed, with Welch's t interval (unequal variances); n is the
    smaller side's count."""
    x, y = finite_values(a), finite_values(b)
    n = min(len(x), len(y))
    estimate = float(np.mean(x) - np.mean(y)) if n else math.nan
    if n < 2:
        return Effect(name, estimate, math.nan, math.nan, n, "fewer than 2 values a side: no interval",
                      confidence=confidence)
    va, vb = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    standard_error = float(math.sqrt(va + vb))
    if standard_error == 0.0:
        return Effect(name, estimate, estimate, estimate, n, "all values equal", 0.0, confidence)
    # Welch–Satterthwaite degrees of freedom.
    df = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    from scipy import stats
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * standard_error
    return Effect(name, estimate, estimate - half, estimate + half, n, f"Welch t, {df:.1f} df", standard_error,
                  confidence)


def exact_effect(value: float, *, name: str, method: str = "a deterministic computation, no seeds") -> Effect:
    """A value computed without randomness (a closed form, a simulation with no seed): its interval is the point."""
    value = float(value)
    return Effect(name, value, value, value, 1, method, 0.0, exact=True)
