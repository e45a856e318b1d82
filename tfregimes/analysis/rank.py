"""Rank correlations between a measure and generalization across runs: Kendall's τ_b with a bootstrap CI, the
partial τ given a covariate (the training loss by default), and Jiang et al. 2020's granulated Kendall Ψ.

Sign convention (the report's): τ > 0 when runs with a larger measure have a larger generalization gap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tfregimes.analysis.estimates import CONFIDENCE, SEED, Effect, finite_values

MIN_RUNS = 3  # Fewer runs give no useful τ.
RESAMPLES = 2000  # Bootstrap resamples of the runs for τ's interval.


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's τ_b of each row of x against the same row of y (shape (B, n) → (B,)); NaN where a row is constant.
    τ_b = (n_c − n_d) / √((n_0 − n_1)(n_0 − n_2)), n_0 = n(n−1)/2, n_1, n_2 the tied pairs in x and y (Kendall 1945)."""
    n = x.shape[1]
    dx = np.sign(x[:, :, None] - x[:, None, :]).astype(np.int8)
    dy = np.sign(y[:, :, None] - y[:, None, :]).astype(np.int8)
    concordance = np.einsum("bij,bij->b", dx, dy, dtype=np.int64) / 2.0  # n_c − n_d, each pair counted twice.
    pairs = n * (n - 1) / 2.0
    untied_x = pairs - ((dx == 0).sum(axis=(1, 2)) - n) / 2.0  # The diagonal is n ties of a value with itself.
    untied_y = pairs - ((dy == 0).sum(axis=(1, 2)) - n) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.sqrt(untied_x * untied_y)


def _taus(columns: Sequence[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
    """τ_b of every pair (i < j) of `columns` over the runs of each row of `index` (resamples).
    A resample is its multiplicities c (how often each run is drawn), so every pair count is a quadratic form over
    the original runs: n_c − n_d = ½ cᵀ(S_x ∘ S_y)c with S_x[k, l] = sign(x_k − x_l), and the tied pairs in x
    (self-pairs included) cᵀ[x_k = x_l]c — the same integers `_tau_b` counts on the resampled arrays, at O(n²) per
    resample without forming them."""
    resamples, n = index.shape
    counts = np.bincount((np.arange(resamples)[:, None] * n + index).ravel(),
                         minlength=resamples * n).reshape(resamples, n)
    signs = [np.sign(c[:, None] - c[None, :]).astype(np.int64) for c in columns]

    def form(matrix: np.ndarray) -> np.ndarray:  # Integer products: exact, and no BLAS threads to contend for.
        return np.einsum("bk,bk->b", counts @ matrix, counts)

    ties = [form((s == 0).astype(np.int64)) for s in signs]  # Pairs (i, j) tied, i = j included: n of them.
    pairs = n * (n - 1) / 2.0
    out = []
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            concordance = form(signs[i] * signs[j]) / 2.0
            untied_x, untied_y = pairs - (ties[i] - n) / 2.0, pairs - (ties[j] - n) / 2.0
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(concordance / np.sqrt(untied_x * untied_y))
    return out


def _complete(*arrays) -> list[np.ndarray]:
    stacked = np.asarray([np.asarray(a, dtype=float) for a in arrays])
    kept = np.isfinite(stacked).all(axis=0)
    return [row[kept] for row in stacked]


def _partial(t_xy, t_xz, t_yz):
    # Kendall (1942)'s partial rank correlation: τ_xy·z = (τ_xy − τ_xz τ_yz) / √((1 − τ_xz²)(1 − τ_yz²)).
    with np.errstate(invalid="ignore", divide="ignore"):
        return (t_xy - t_xz * t_yz) / np.sqrt((1.0 - t_xz ** 2) * (1.0 - t_yz ** 2))


def _effect(name: str, estimate: float, draws: np.ndarray, n: int, resamples: int, confidence: float) -> Effect:
    draws = draws[np.isfinite(draws)]
    if not math.isfinite(estimate) or len(draws) < resamples // 2:  # Most resamples degenerate: no interval.
        return Effect(name, estimate, math.nan, math.nan, n, "bootstrap failed: too many constant resamples",
                      confidence=confidence)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Effect(name, estimate, float(low), float(high), n,
                  f"bootstrap percentile over runs, {resamples} resamples", float(np.std(draws, ddof=1)), confidence)


def _bootstrap_index(n: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, n, size=(resamples, n))


def kendall_tau(measure, target, *, name: str = "Kendall τ_b", confidence: float = CONFIDENCE,
                resamples: int = RESAMPLES) -> Effect:
    """τ_b between `measure` and `target` over the runs where both are finite, with a percentile bootstrap CI
    (runs resampled with replacement). NaN below MIN_RUNS runs."""
    x, y = _complete(measure, target)
    n = len(x)
    if n < MIN_RUNS:
        return Effect(name, math.nan, math.nan, math.nan, n, f"fewer than {MIN_RUNS} runs", confidence=confidence)
    estimate = float(_tau_b(x[None], y[None])[0])
    (draws,) = _taus([x, y], _bootstrap_index(n, resamples))
    return _effect(name, estimate, draws, n, resamples, confidence)


def partial_kendall_tau(measure, target, covariate, *, name: str = "partial Kendall τ", confidence: float = CONFIDENCE,
                        resamples: int = RESAMPLES) -> Effect:
    """τ between `measure` and `target` with `covariate` held fixed (Kendall 1942's partial τ), over the runs where
    all three are finite, with a percentile bootstrap CI. A measure whose τ with the gap comes only through the
    training loss has a partial τ near 0."""
    x, y, z = _complete(measure, target, covariate)
    n = len(x)
    if n < MIN_RUNS:
        return Effect(name, math.nan, math.nan, math.nan, n, f"fewer than {MIN_RUNS} runs", confidence=confidence)
    t_xy, t_xz, t_yz = (float(t[0]) for t in _taus([x, y, z], np.arange(n)[None]))
    estimate = float(_partial(t_xy, t_xz, t_yz))
    d_xy, d_xz, d_yz = _taus([x, y, z], _bootstrap_index(n, resamples))
    return _effect(name, estimate, _partial(d_xy, d_xz, d_yz), n, resamples, confidence)


@dataclasses.dataclass(frozen=True)
class Granulated:
    """Jiang et al. 2020's granulated Kendall coefficient: `psi` the mean over axes of `per_axis[axis]`, the mean τ
    over the groups of runs in which only that axis varies; `groups[axis]` how many groups had a τ."""
    psi: float
    per_axis: dict[str, float]
    groups: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def granulated_kendall(df: pd.DataFrame, measure: str, target: str, axes: Sequence[str]) -> Granulated:
    """Ψ of `measure` against `target` over the hyper-parameter `axes` (columns of `df`, one row a run).
    Jiang et al. 2020, eq. (4): m_i = mean over the values of every other axis of τ(measure, target) over the runs
    that share them (only axis i — and the seed — varies), Ψ = mean_i m_i. Groups whose τ is undefined (fewer than 2
    runs, or a constant column) are left out and counted in `groups`; an axis with no group is NaN, left out of Ψ."""
    per_axis, groups = {}, {}
    for axis in axes:
        others = [a for a in axes if a != axis]
        taus = []
        grouped = df.groupby([df[a].astype(str) for a in others], sort=False) if others else [((), df)]
        for _, group in grouped:
            x, y = _complete(pd.to_numeric(group[measure], errors="coerce"),
                             pd.to_numeric(group[target], errors="coerce"))
            if len(x) >= 2:
                tau = float(_tau_b(x[None], y[None])[0])
                if math.isfinite(tau):
                    taus.append(tau)
        per_axis[axis] = float(np.mean(taus)) if taus else math.nan
        groups[axis] = len(taus)
    defined = finite_values(per_axis.values())
    return Granulated(psi=float(np.mean(defined)) if len(defined) else math.nan, per_axis=per_axis, groups=groups)
