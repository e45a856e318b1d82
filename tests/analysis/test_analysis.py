"""tfregimes.analysis against closed forms: τ of known permutations, the partial τ formula, Ψ counted by hand, the
coverage of the intervals over simulated normal data, and the verdict words on constructed cases."""

from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from scipy import stats

from tfregimes import analysis
from tfregimes.analysis import estimates


@pytest.mark.parametrize("x, y, tau", [
    ([1, 2, 3, 4], [1, 2, 3, 4], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    ([1, 2, 3, 4], [2, 1, 3, 4], 4 / 6),  # One discordant pair of 6: (5 − 1) / 6.
    ([1, 2, 3, 4, 5], [3, 1, 2, 5, 4], 4 / 10),  # Discordant: (3,1), (3,2), (5,4): (7 − 3) / 10.
    # τ_b with ties: n_0 = 6, x ties 1 pair, y none; n_c − n_d = 5 − 0 over √(5 · 6).
    ([1, 1, 2, 3], [1, 2, 3, 4], 5 / math.sqrt(30)),
])
def test_kendall_tau_of_known_permutations(x, y, tau):
    effect = analysis.kendall_tau(x, y)
    assert effect.estimate == pytest.approx(tau, abs=1e-12)
    assert effect.n == len(x)


def test_kendall_tau_b_agrees_with_scipy_on_ties_and_its_interval_holds_it():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 40), rng.integers(0, 5, 40) + rng.integers(0, 3, 40)
    effect = analysis.kendall_tau(x, y)
    assert effect.estimate == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert effect.low < effect.estimate < effect.high and effect.n == 40
    strong = analysis.kendall_tau(np.arange(30), np.arange(30) + rng.normal(0, 3, 30))
    assert strong.low > 0.5, strong  # A clear monotone relation: the interval is far from 0.


def test_kendall_tau_skips_missing_runs_and_needs_three():
    effect = analysis.kendall_tau([1, 2, np.nan, 4, None, 6], [1, 2, 3, np.inf, 5, 6])
    assert effect.n == 3 and effect.estimate == pytest.approx(1.0)
    assert math.isnan(analysis.kendall_tau([1, 2], [2, 1]).estimate)


def test_bootstrap_taus_are_the_tau_b_of_each_resample():
    # The draws are counted from each resample's multiplicities (a quadratic form over the original runs): they must
    # be τ_b of the resampled arrays themselves, ties (repeated runs, equal values) included, and scipy's τ_b.
    from tfregimes.analysis import rank
    rng = np.random.default_rng(2)
    x, y = np.round(rng.normal(size=9)), np.round(2 * rng.normal(size=9))
    index = rng.integers(0, 9, size=(50, 9))
    (draws,) = rank._taus([x, y], index)
    direct = rank._tau_b(x[index], y[index])
    np.testing.assert_array_equal(np.isnan(draws), np.isnan(direct))
    np.testing.assert_allclose(draws[np.isfinite(direct)], direct[np.isfinite(direct)], rtol=0, atol=1e-12)
    for row, draw in zip(index[:10], draws[:10]):
        assert np.isnan(draw) or draw == pytest.approx(stats.kendalltau(x[row], y[row]).statistic, abs=1e-12)


def test_partial_tau_follows_the_textbook_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=25)
    x, y = z + rng.normal(0, 0.5, 25), z + rng.normal(0, 0.7, 25)
    t_xy, t_xz, t_yz = (stats.kendalltau(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    expected = (t_xy - t_xz * t_yz) / math.sqrt((1 - t_xz ** 2) * (1 - t_yz ** 2))
    effect = analysis.partial_kendall_tau(x, y, z)
    assert effect.estimate == pytest.approx(expected, abs=1e-12)
    assert effect.estimate < t_xy - 0.2  # Most of x's association with y comes through z.
    assert effect.low <= effect.estimate <= effect.high


def test_partial_tau_interval_is_the_percentile_of_the_formula_over_resampled_runs():
    # Independently of rank._taus' quadratic forms: resample the runs with the same draws, compute the three τ_b with
    # scipy on each resample and Kendall's formula on them, and take the 2.5 and 97.5 percentiles of the finite ones.
    from tfregimes.analysis import rank
    rng = np.random.default_rng(3)
    z = rng.normal(size=12)
    x, y = np.round(z + rng.normal(0, 0.7, 12), 1), z + rng.normal(0, 0.7, 12)
    draws = []
    for row in rank._bootstrap_index(12, 300):
        t_xy, t_xz, t_yz = (stats.kendalltau(a[row], b[row]).statistic for a, b in ((x, y), (x, z), (y, z)))
        if max(abs(t_xz), abs(t_yz)) > 1 - 1e-12:  # A τ of ±1 with z: undefined (scipy's rounding gives 1 − 1e-16).
            draws.append(math.nan)
        else:
            draws.append((t_xy - t_xz * t_yz) / math.sqrt((1 - t_xz ** 2) * (1 - t_yz ** 2)))
    draws = np.asarray(draws)
    effect = analysis.partial_kendall_tau(x, y, z, resamples=300)
    low, high = np.percentile(draws[np.isfinite(draws)], [2.5, 97.5])
    assert (effect.low, effect.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert effect.n == 12 and effect.low < effect.estimate < effect.high


def test_partial_tau_of_a_measure_that_is_only_the_covariate_is_small():
    # y depends on z alone; x = z plus noise: holding z fixed leaves little between x and y.
    rng = np.random.default_rng(1)
    z = rng.normal(size=200)
    x, y = z + rng.normal(0, 0.3, 200), z + rng.normal(0, 0.3, 200)
    assert analysis.kendall_tau(x, y).estimate > 0.5
    assert abs(analysis.partial_kendall_tau(x, y, z).estimate) < 0.2


def test_granulated_psi_counted_by_hand():
    # Axes a ∈ {1, 2} and b ∈ {1, 2, 3}, one run per cell.
    table = pd.DataFrame({"a": [1, 1, 1, 2, 2, 2], "b": [1, 2, 3, 1, 2, 3],
                          "m": [1.0, 2.0, 3.0, 6.0, 5.0, 4.0], "gap": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    # Axis a (b fixed; two runs per group): b=1: m 1→6, gap 1→4 concordant, τ = 1; b=2: 2→5, 2→5: 1; b=3: 1.
    # Axis b (a fixed; three runs per group): a=1: m and gap both rise, τ = 1; a=2: m falls as gap rises, τ = −1.
    result = analysis.granulated_kendall(table, "m", "gap", ["a", "b"])
    assert result.per_axis == {"a": pytest.approx(1.0), "b": pytest.approx(0.0)}
    assert result.groups == {"a": 3, "b": 2}
    assert result.psi == pytest.approx(0.5)


def test_granulated_psi_leaves_out_undefined_groups():
    table = pd.DataFrame({"a": [1, 2, 1, 2], "b": [1, 1, 2, 2], "m": [1.0, 2.0, 3.0, 3.0],
                          "gap": [1.0, 2.0, 5.0, 4.0]})
    # Axis a: b=1 τ = 1; b=2 m constant (undefined). Axis b: a=1 τ(1→3, 1→5) = 1; a=2 τ(2→3, 2→4) = 1.
    result = analysis.granulated_kendall(table, "m", "gap", ["a", "b"])
    assert result.groups == {"a": 1, "b": 2} and result.psi == pytest.approx(1.0)


@pytest.mark.parametrize("n, method", [(5, "t, 4 df"), (25, "bootstrap BCa")])
def test_interval_covers_the_true_mean_at_least_90_percent(n, method):
    rng = np.random.default_rng(7)
    trials = 200
    covered = 0
    for _ in range(trials):
        effect = analysis.mean_effect(rng.normal(1.5, 2.0, n), resamples=999)
        covered += effect.low <= 1.5 <= effect.high
    assert effect.method.startswith(method)
    assert covered / trials >= 0.90, covered


def test_t_interval_by_hand():
    values = [1.0, 2.0, 4.0]  # mean 7/3, sample std √(7/3), t_{0.975, 2} = 4.302653.
    effect = analysis.mean_effect(values)
    half = 4.302652729911275 * math.sqrt(7 / 3) / math.sqrt(3)
    assert (effect.estimate, effect.low, effect.high) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half))


def test_paired_difference_pairs_by_seed_and_drops_missing():
    a = {0: 1.0, 1: 2.0, 2: 3.5, 3: float("nan"), 4: 9.0}
    b = {0: 0.5, 1: 1.0, 2: 3.0, 3: 1.0}  # Seed 4 has no partner, seed 3 a missing value.
    effect = analysis.paired_difference(a, b)
    assert effect.n == 3 and effect.estimate == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert effect.method == "t, 2 df"
    with pytest.raises(ValueError, match="equal lengths"):
        analysis.paired_difference([1, 2], [1, 2, 3])


def test_welch_interval_matches_scipy():
    a, b = [1.0, 2.0, 3.5, 2.2], [0.2, 0.9, 1.1, 0.4, 0.8]
    effect = analysis.unpaired_difference(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (effect.low, effect.high) == pytest.approx((reference.low, reference.high))
    assert effect.n == 4


def test_summary_mean_and_sample_std():
    summary = analysis.summarize([1.0, 2.0, None, float("nan"), 3.0])
    assert (summary.mean, summary.std, summary.n) == (2.0, 1.0, 3)
    assert summary.text() == "2 ± 1 (n = 3)"
    assert analysis.summarize([0.5]).text(scale=100) == "50 (one run)" and math.isnan(analysis.summarize([0.5]).std)
    assert analysis.summarize([]).text() == "—"
    # Without the counts, as the results table shows a cell (its own columns count the runs): 4 significant digits.
    assert analysis.summarize([0.91234, 0.92345]).text(counts=False) == "0.9179 ± 0.007856"
    assert analysis.summarize([0.5]).text(counts=False) == "0.5" and analysis.summarize([]).text(counts=False) == "—"


def _effect(low, high, n=5, estimate=None):
    middle = (low + high) / 2 if estimate is None else estimate
    return estimates.Effect("difference", middle, low, high, n, "t, 4 df")


@pytest.mark.parametrize("low, high, direction, word", [
    (0.2, 1.0, "greater", "supports"),
    (-1.0, -0.2, "greater", "contradicts"),
    (-0.2, 1.0, "greater", "inconclusive"),
    (-1.0, -0.2, "less", "supports"),
    (0.2, 1.0, "less", "contradicts"),
    (-0.5, 0.1, "less", "inconclusive"),
])
def test_verdict_words(low, high, direction, word):
    result = analysis.verdict(_effect(low, high), direction)
    assert result.word == word
    assert word in result.text() and "rule:" in result.text() and "n = 5" in result.text()
    assert "the 95 % CI lies" in result.text()


def test_rule_states_the_confidence_of_a_widened_interval():
    # A comparison picked among several (e.g. against the best of 4 other cells) may widen its interval; the rule
    # printed beside the word says which interval it read.
    values = {0: 1.0, 1: 2.0, 2: 4.0}
    effect = analysis.paired_difference(values, {0: 0.0, 1: 0.0, 2: 0.0}, confidence=1 - 0.05 / 4)
    text = analysis.verdict(effect, "greater").text()
    assert "98.75 % CI" in effect.text() and "the 98.75 % CI lies above 0" in text and "95 %" not in text


def test_not_comparable_when_too_few_or_not_at_the_same_target():
    assert analysis.verdict(_effect(0.2, 1.0, n=2), "greater").word == "not comparable"
    unequal = analysis.Comparability(False, "1 of 6 runs did not reach train_loss <= 0.01")
    result = analysis.verdict(_effect(0.2, 1.0), "greater", comparability=unequal)
    assert result.word == "not comparable" and "did not reach" in result.text()
    assert "rule: supports if the 95 % CI lies above 0" in result.text()  # The rule is printed with every word.
    exact = analysis.exact_effect(0.95, name="late alignment")
    assert analysis.verdict(exact, "greater").word == "supports"  # A deterministic value needs no seeds.


def test_equivalence_claims():
    assert analysis.verdict(_effect(-0.1, 0.2), "equivalent", margin=0.5).word == "supports"
    assert analysis.verdict(_effect(0.6, 0.9), "equivalent", margin=0.5).word == "contradicts"
    assert analysis.verdict(_effect(-0.1, 0.9), "equivalent", margin=0.5).word == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        analysis.verdict(_effect(-0.1, 0.2), "equivalent")


def test_same_stop_target():
    runs = pd.DataFrame({"stop/criterion": ["train_loss"] * 3, "stop/target": [0.01] * 3,
                         "stop/reached_target": [True, True, True]})
    assert analysis.same_stop_target(runs) == analysis.Comparability(
        True, "all 3 runs reached train_loss <= 0.01 on the clean training set")
    missed = runs.assign(**{"stop/reached_target": [True, False, True]})
    assert analysis.same_stop_target(missed).why == "1 of 3 runs did not reach train_loss <= 0.01"
    other = runs.assign(**{"stop/target": [0.01, 0.02, 0.01]})
    assert not analysis.same_stop_target(other).ok and "different stop targets" in analysis.same_stop_target(other).why
    assert not analysis.same_stop_target(pd.DataFrame({"test_accuracy": [0.9]})).ok


def test_the_readme_example_prints_what_the_readme_says():
    readme = (REPO / "docs" / "sweeps_and_results.md").read_text()
    section = readme.split("### Comparing settings: one verdict rule", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", section, flags=re.S).group(1)
    printed = " ".join(re.search(r"prints `(.*?)`", section, flags=re.S).group(1).split())
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(code, {})
    assert output.getvalue().strip() == printed
