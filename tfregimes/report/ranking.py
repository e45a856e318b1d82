"""The measure ranking of seed 004 §7.1: how well each measure orders runs by their generalization gap, and whether
it says more than the training loss does.

For every minimum metric and final training diagnostic m, and each gap, over the runs that finished (diverged runs
and runs without the measure are left out), all from `tfregimes.analysis`:
- τ: Kendall's τ_b between m and the gap, with its 95 % bootstrap CI (`kendall_tau`);
- partial τ: τ between m and the gap with the training loss held fixed (Kendall 1942; `partial_kendall_tau`), with
  its CI. "Beyond fit" is `yes` when that CI excludes 0 (either side), `no` when it includes 0: a measure whose τ
  comes only through how far the runs were trained has a partial τ near 0;
- Ψ: Jiang et al. 2020's granulated τ over the sweep's varied flags except the seed, with the mean τ per flag
  (`granulated_kendall`); NaN with fewer than 2 flags or no group of runs in which one flag alone varies;
- n: the runs τ rests on.
The training loss itself is a row (its role `baseline`): a measure that ranks the runs no better than the
training loss explains nothing beyond fit. Its partial τ given itself is undefined (NaN).

Sign convention: τ > 0 when runs with a larger measure have a larger gap, so a measure of sharpness that explains
generalization has τ > 0 and a margin has τ < 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tfregimes.analysis import granulated_kendall, kendall_tau, partial_kendall_tau
from tfregimes.results.table import SEED_FLAG

GAPS = {"gap_accuracy": "train − test accuracy", "gap_loss": "test − train loss"}
COVARIATE = "train_loss"  # What a measure must explain more than: how far the run was trained.
BASELINE, MEASURE = "baseline", "measure"  # A row's role.


def beyond_fit(low: float, high: float) -> str | None:
    """'yes' when the partial τ's CI [low, high] excludes 0, 'no' when it includes 0, None without a CI."""
    if math.isnan(low) or math.isnan(high):
        return None
    return "yes" if low > 0 or high < 0 else "no"


def psi_axes(df: pd.DataFrame, axes=None) -> tuple[list[str], str]:
    """The flags Ψ runs over (`axes`, default the varied flags of `df.attrs` without the seed) and, when there are
    fewer than 2, why Ψ is not computed ('' otherwise)."""
    axes = [a for a in (df.attrs.get("varied_flags", []) if axes is None else axes) if a != SEED_FLAG]
    if len(axes) < 2:
        varied = ", ".join(axes) or "none"
        return axes, (f"Ψ needs at least 2 varied flags besides --seed (varied: {varied}): with one "
                      "it would be τ itself")
    return axes, ""


def _gap_cells(done: pd.DataFrame, column: str, gap: str, axes: list[str], covariate: str | None) -> dict:
    values = pd.to_numeric(done[column], errors="coerce")
    tau = kendall_tau(values, done[gap])
    cells = {f"tau/{gap}": tau.estimate, f"tau_low/{gap}": tau.low, f"tau_high/{gap}": tau.high, f"n/{gap}": tau.n}
    partial_low = partial_high = partial = math.nan
    if covariate is not None and column != covariate:
        effect = partial_kendall_tau(values, done[gap], done[covariate])
        partial, partial_low, partial_high = effect.estimate, effect.low, effect.high
    cells.update({f"partial/{gap}": partial, f"partial_low/{gap}": partial_low, f"partial_high/{gap}": partial_high,
                  f"beyond_fit/{gap}": beyond_fit(partial_low, partial_high)})
    if len(axes) >= 2:
        granulated = granulated_kendall(done, column, gap, axes)
        cells[f"psi/{gap}"] = granulated.psi
        cells.update({f"psi_{axis}/{gap}": granulated.per_axis[axis] for axis in axes})
    else:
        cells[f"psi/{gap}"] = math.nan
    return cells


def rank_measures(df: pd.DataFrame, measures, gaps=tuple(GAPS), *, covariate: str | None = COVARIATE,
                  axes=None) -> pd.DataFrame:
    """One row per measure, and one for `covariate` (role `baseline`) when `df` has it: `measure`, `role`, and for
    each gap `tau/<gap>` with `tau_low/<gap>`, `tau_high/<gap>` (95 % CI), `partial/<gap>` with `partial_low/<gap>`,
    `partial_high/<gap>` (given `covariate`), `beyond_fit/<gap>` ('yes', 'no', or missing without a CI),
    `psi/<gap>` and `psi_<axis>/<gap>` per axis (with 2 or more axes), `n/<gap>`. Sorted by |τ| against the first
    gap, largest first, the baseline among them (rows with no τ last). `attrs`: `axes`, `psi_why` (why Ψ is NaN for
    every row, '' when it is computed), `covariate`."""
    done = df[df["state"] == "done"]
    axes, psi_why = psi_axes(df, axes)
    if covariate is not None and covariate not in df:
        covariate = None
    rows = [{"measure": covariate, "role": BASELINE}] if covariate is not None else []
    rows += [{"measure": m, "role": MEASURE} for m in measures if m != covariate]
    for row in rows:
        for gap in gaps:
            row.update(_gap_cells(done, row["measure"], gap, axes, covariate))
    ranking = pd.DataFrame(rows)
    if len(ranking):
        order = ranking[f"tau/{gaps[0]}"].abs().fillna(-1.0)
        ranking = ranking.iloc[np.argsort(-order.to_numpy(), kind="stable")].reset_index(drop=True)
    if len(axes) >= 2 and len(ranking) and ranking[[f"psi/{g}" for g in gaps]].isna().all(axis=None):
        psi_why = (f"no group of finished runs in which one of {', '.join(axes)} alone varies (and the seed) has 2 "
                   "runs with a defined τ")
    ranking.attrs.update({"axes": axes, "psi_why": psi_why, "covariate": covariate})
    return ranking


def _number(value: float) -> str:
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def interval_text(estimate: float, low: float, high: float) -> str:
    """'0.52 [0.31, 0.70]'; the estimate alone when there is no interval, '—' without an estimate."""
    if math.isnan(estimate):
        return "—"
    if math.isnan(low) or math.isnan(high):
        return _number(estimate)
    return f"{_number(estimate)} [{_number(low)}, {_number(high)}]"


def ranking_cells(ranking: pd.DataFrame, gap: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the ranking against one gap as text, in the ranking's order; the baseline row's measure
    reads '<covariate> (baseline)'."""
    covariate = ranking.attrs.get("covariate") or COVARIATE
    axes = ranking.attrs.get("axes", [])
    header = ["measure", "τ [95 % CI]", f"partial τ given {covariate} [95 % CI]", "beyond fit?", "Ψ",
              "Ψ per flag", "n"]
    rows = []
    for row in ranking.to_dict("records"):
        baseline = row["role"] == BASELINE
        per_axis = ", ".join(f"{axis} {interval_text(row[f'psi_{axis}/{gap}'], math.nan, math.nan)}"
                             for axis in axes if f"psi_{axis}/{gap}" in row)
        fit = row[f"beyond_fit/{gap}"]
        rows.append([f"{row['measure']} (baseline)" if baseline else row["measure"],
                     interval_text(row[f"tau/{gap}"], row[f"tau_low/{gap}"], row[f"tau_high/{gap}"]),
                     "—" if baseline else interval_text(row[f"partial/{gap}"], row[f"partial_low/{gap}"],
                                                        row[f"partial_high/{gap}"]),
                     fit if isinstance(fit, str) else "—", interval_text(row[f"psi/{gap}"], math.nan, math.nan),
                     per_axis or "—",
                     str(row[f"n/{gap}"])])
    return header, rows
