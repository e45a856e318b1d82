"""The measure ranking of seed 004 §7.1: how well each measure orders runs by their generalization gap.

For every minimum metric and final training diagnostic m, Kendall's τ_b (scipy.stats.kendalltau) between m and
each gap across the runs that finished (diverged runs and runs without the measure are left out), with its
two-sided p-value and the number of runs n. Sign convention: τ > 0 when runs with a larger measure have a larger
gap, so a measure of sharpness that explains generalization has τ > 0 and a margin has τ < 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

GAPS = {"gap_accuracy": "train − test accuracy", "gap_loss": "test − train loss"}
MIN_RUNS = 3  # Fewer runs give no useful τ: not computed.


def kendall(measure: np.ndarray, gap: np.ndarray) -> tuple[float, float, int]:
    """(τ_b, two-sided p-value, n) over the pairs where both are finite; NaN τ below MIN_RUNS pairs."""
    measure, gap = np.asarray(measure, dtype=float), np.asarray(gap, dtype=float)
    kept = np.isfinite(measure) & np.isfinite(gap)
    n = int(kept.sum())
    if n < MIN_RUNS:
        return math.nan, math.nan, n
    result = stats.kendalltau(measure[kept], gap[kept])
    return float(result.statistic), float(result.pvalue), n


def rank_measures(df: pd.DataFrame, measures, gaps=tuple(GAPS)) -> pd.DataFrame:
    """One row per measure: `measure`, and for each gap `tau/<gap>`, `p/<gap>`, `n/<gap>`; sorted by |τ| against
    the first gap, largest first (measures with no τ last)."""
    done = df[df["state"] == "done"]
    rows = []
    for measure in measures:
        row = {"measure": measure}
        for gap in gaps:
            tau, p_value, n = kendall(pd.to_numeric(done[measure], errors="coerce"), done[gap])
            row.update({f"tau/{gap}": tau, f"p/{gap}": p_value, f"n/{gap}": n})
        rows.append(row)
    ranking = pd.DataFrame(rows, columns=["measure", *(f"{k}/{g}" for g in gaps for k in ("tau", "p", "n"))])
    if len(ranking):
        order = ranking[f"tau/{gaps[0]}"].abs().fillna(-1.0)
        ranking = ranking.iloc[np.argsort(-order.to_numpy(), kind="stable")].reset_index(drop=True)
    return ranking
