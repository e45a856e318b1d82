"""scripts/reproduce_leclerc_madry.py: heavy ball on a quadratic against closed forms, the LR × momentum analysis on
constructed runs whose answer is known, and the --smoke pipeline end to end."""

import json
import statistics
import sys

import numpy as np
import pytest
from helpers import REPO, run_cli

sys.path.insert(0, str(REPO / "scripts"))
from leclerc_madry import convex, lr_momentum, two_phase  # noqa: E402


def test_gradient_descent_loss_equals_its_closed_form():
    # μ = 0: in A's eigenbasis c_i ← (1 − 2ηλ_i) c_i, so f_T = Σ λ_i (1 − 2ηλ_i)^{2T} c_i².
    a, eigenvalues, basis = convex.make_quadratic(6, 1e3, seed=3)
    start = np.random.default_rng(4).standard_normal(6)
    c, lrs, steps = basis.T @ start, np.array([1e-5, 1e-4, 4e-4]), 200
    expected = [np.sum(eigenvalues * (1 - 2 * lr * eigenvalues) ** (2 * steps) * c ** 2) for lr in lrs]
    np.testing.assert_allclose(convex.final_losses_in_eigenbasis(eigenvalues, c, 0.0, lrs, steps), expected,
                               rtol=1e-9)
    curves = convex.heavy_ball_curves(a, start, 0.0, float(lrs[1]), steps, record_at=[steps])
    np.testing.assert_allclose(curves["loss"][-1], expected[1], rtol=1e-8)


def test_eigenbasis_grid_equals_the_original_basis_with_momentum():
    a, eigenvalues, basis = convex.make_quadratic(8, 1e4, seed=0)
    start = np.random.default_rng(1).standard_normal(8)
    grid = convex.final_losses_in_eigenbasis(eigenvalues, basis.T @ start, 0.9, [3e-6, 3e-5, 1.0], 150)
    direct = convex.heavy_ball_curves(a, start, 0.9, 3e-5, 150, record_at=[])["loss"][-1]
    np.testing.assert_allclose(grid[1], direct, rtol=1e-8)
    assert grid[2] == np.inf  # η = 1 diverges (η·2λ_max ≫ 2(1 + μ)): recorded as inf, not NaN.


def test_scale_and_alignment_reach_the_one_dimensional_closed_form():
    # f = w² (λ = 1): w_t ∝ ρ^t with ρ the larger root of ρ² − (1 + μ − 2η)ρ + μ = 0 (overdamped), so
    # v_t = w_t − w_{t−1} = w_t (1 − 1/ρ) and r_t = |v_t| / (η·2|w_t|) → (1/ρ − 1)/(2η); v points at x* = 0.
    mu, lr = 0.9, 1e-4
    rho = max(np.roots([1.0, -(1 + mu - 2 * lr), mu]).real)
    curves = convex.heavy_ball_curves(np.array([[1.0]]), [1.0], mu, lr, 3000, record_at=[3000])
    np.testing.assert_allclose(curves["scale"][-1], (1 / rho - 1) / (2 * lr), rtol=1e-6)
    np.testing.assert_allclose(curves["alignment"][-1], 1.0, atol=1e-12)
    assert abs(curves["scale"][-1] * (1 - mu) - 1) < 0.03  # ≈ 1/(1 − μ) when 2η ≪ (1 − μ)².


def words(claims) -> list[str]:
    return [verdict.word for _, verdict, _ in claims]


def convex_results(finals, alignments, ratios):
    """Figure 2's numbers as `run_convex` records them: f after T steps, and s_t and r_t·(1 − μ) curves whose last
    LATE values average the given ones (±1 % around them; 10 earlier values far off, which the late means leave
    out)."""
    steps = list(range(1, convex.LATE + 11))
    tilt = [0.01 * (2 * i / (convex.LATE - 1) - 1) for i in range(convex.LATE)]  # Sums to 0.

    def curve(late):
        return [10 * late + 1] * 10 + [late * (1 + t) for t in tilt]
    return {"momenta": {str(mu): {"momentum": mu, "final_loss": f, "curves": {
        "steps": steps, "alignment": curve(s), "scale": curve(ratio / (1 - mu))}}
        for mu, f, s, ratio in zip(convex.MOMENTA, finals, alignments, ratios)}}


def test_convex_verdicts_read_exact_effects_against_zero_and_the_thresholds():
    clear = convex_results((10, 1, 0.1, 0.01), (0.0, 0.95, 0.97, 0.99), (1.0, 1.02, 0.98, 1.05))
    claims = convex.verdicts(clear)
    assert words(claims) == ["supports"] * 4
    assert claims[1][1].effect.estimate == pytest.approx(0.95 - 0.9) and claims[1][1].effect.exact
    assert claims[3][1].effect.estimate == pytest.approx(0.05)  # The μ farthest from its limit.
    opposite = convex_results((0.01, 0.1, 1, 10), (0.0, 0.5, 0.97, 0.99), (1.0, 0.4, 0.05, 0.02))
    assert words(convex.verdicts(opposite)) == ["contradicts"] * 4
    # f equal at two μ: no drop, so "faster" is inconclusive; r_t 15 % off its limit: outside the ±10 % margin.
    tied = convex_results((10, 1, 1, 0.01), (0.0, 0.95, 0.97, 0.99), (1.0, 1.0, 1.0, 1.15))
    assert words(convex.verdicts(tied)) == ["inconclusive", "supports", "supports", "contradicts"]
    assert "rule: supports if the 95 % CI lies inside ±0.1" in convex.verdicts(tied)[3][1].text()


def constructed_runs(lrs, shift_exponent: float, seeds=(0, 1, 2)):
    """Runs whose accuracy and loss curves depend on η/(1 − μ)^shift_exponent only (1: the paper's claim exactly),
    plus a per-(seed, μ) offset of the accuracy (so the seeds differ, and the best η does not move)."""
    records = []
    for k, mu in enumerate(lr_momentum.MOMENTA):
        for seed in seeds:
            for lr in lrs:
                step = lr / (1 - mu) ** shift_exponent
                accuracy = 0.9 - 0.1 * (np.log10(step) + 1) ** 2 + 0.002 * ((seed + k) % 3)  # Best at step 0.1.
                losses = [float(np.exp(-step * epoch)) for epoch in range(1, 7)]
                diverged = step > 5
                records.append({"momentum": mu, "learning_rate": lr, "seed": seed, "diverged": diverged,
                                "test_accuracy": float("nan") if diverged else accuracy, "epoch_losses": losses})
    return records


def test_lr_momentum_analysis_finds_the_collapse_when_accuracy_depends_on_the_step_only():
    lrs = tuple(float(x) for x in np.logspace(-3, 1, 9))  # Grid step 10^0.5: 1 − μ = 0.1 is exactly two steps.
    grid = lr_momentum.Setting(lr_momentum.MOMENTA, lrs, (0, 1, 2), epochs=6, train_subset=0)
    analysis = lr_momentum.analyse(constructed_runs(lrs, 1.0), grid)
    assert analysis["best_lr"] == pytest.approx({"0.0": 0.1, "0.5": lrs[np.argmin(np.abs(np.array(lrs) - 0.05))],
                                                 "0.9": 0.01})
    assert set(analysis["per_seed"]) == {"0", "1", "2"}
    seed = analysis["per_seed"]["1"]
    assert seed["best_lr"] == analysis["best_lr"]  # The offsets do not move the best η.
    assert seed["curve_gap"]["0.9"]["effective"] == pytest.approx(0.002, abs=1e-12)  # Shifted copies, offset apart.
    assert seed["curve_gap"]["0.9"]["raw"] > 0.1
    assert seed["matches"]["0.0"]["matched_lr"] == pytest.approx(0.1)  # 0.01 / (1 − 0.9): the same step.
    assert seed["matches"]["0.0"]["ratio"] == pytest.approx(1.0)
    claims = lr_momentum.verdicts(analysis)
    assert words(claims) == ["supports"] * 3
    assert claims[0][1].effect.n == 3  # Paired by seed.
    # Each seed's mean gap over μ ≠ 0 (points), against η minus against η/(1 − μ), averaged over the seeds.
    gaps = [a["curve_gap"].values() for a in analysis["per_seed"].values()]
    assert claims[0][1].effect.estimate == pytest.approx(statistics.fmean(
        100 * statistics.fmean(g["raw"] for g in seed) - 100 * statistics.fmean(g["effective"] for g in seed)
        for seed in gaps))
    # Momentum that does nothing (accuracy depends on η alone): the curves coincide against η instead, the best
    # steps differ by 1/(1 − μ) (a decade at μ = 0.9) and the matched η is η_base itself (a decade off at μ = 0).
    unshifted = lr_momentum.analyse(constructed_runs(lrs, 0.0), grid)
    assert unshifted["matches"]["0.0"]["matched_lr"] == pytest.approx(unshifted["baseline"]["learning_rate"])
    assert words(lr_momentum.verdicts(unshifted)) == ["contradicts"] * 3
    # Two seeds: not comparable, however clear the effect.
    two = lr_momentum.analyse(constructed_runs(lrs, 1.0, seeds=(0, 1)), grid)
    assert words(lr_momentum.verdicts(two)) == ["not comparable"] * 3


def test_curve_gap_interpolates_the_reference_curve():
    x_ref, y_ref = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, np.nan])
    assert lr_momentum.curve_gap(x_ref, y_ref, np.array([0.5, 1.0, 1.5]), np.array([1.0, 1.0, 0.0])) == 0.25


def two_phase_runs(accuracy_of, seeds=(0, 1, 2)):
    return [{"transition_epoch": t, "seed": s, "diverged": False, "test_accuracy": accuracy_of(t, s)}
            for t in (1, 3, 6, 9, 12, 15, 19) for s in seeds]


def test_two_phase_bins_pair_each_bin_with_the_three_stage_runs_by_seed():
    baseline = [{"transition_epoch": 0, "seed": s, "diverged": False, "test_accuracy": a}
                for s, a in enumerate((0.60, 0.64, 0.62))]
    baseline.append({**baseline[0], "seed": 3, "diverged": True, "test_accuracy": None})
    # Bins of [1, 19] by 4: [1, 5.5), [5.5, 10), [10, 14.5), [14.5, 19]; each seed 5 points above its baseline.
    with_momentum = two_phase_runs(lambda t, s: (0.65, 0.69, 0.67)[s] + 0.001 * ((t + s) % 3))
    without = two_phase_runs(lambda t, s: (0.65, 0.69, 0.67)[s] + 0.001 * ((t + 2 * s) % 3))
    analysis = two_phase.analyse({"baseline": baseline, "with_momentum": with_momentum,
                                  "without_momentum": without}, epochs=20)
    bins = analysis["bins"]["with_momentum"]
    assert [b["count"] for b in bins] == [6, 6, 3, 6] and bins[0]["transition_epochs"] == [1, 3]
    assert bins[2]["by_seed"] == pytest.approx({"0": 65.0, "1": 69.1, "2": 67.2})  # t = 12: + 0, 0.1, 0.2.
    assert analysis["baseline"] == pytest.approx({"0": 60.0, "1": 64.0, "2": 62.0})  # The diverged run left out.
    claims = two_phase.verdicts(analysis)
    assert len(claims) == 9 and words(claims) == ["supports"] * 9  # Every bin ≥ three stages; momentum within ±1.
    assert claims[0][1].effect.estimate == pytest.approx(5.0 + 1.0, abs=0.2)  # The difference plus the margin.
    # Two phases 5 points below three stages, and momentum worth 5 points: both contradicted.
    worse = two_phase.analyse({"baseline": baseline,
                               "with_momentum": two_phase_runs(lambda t, s: (0.55, 0.59, 0.57)[s] + 0.01 * (t % 3)),
                               "without_momentum": two_phase_runs(lambda t, s: (0.50, 0.54, 0.52)[s])}, epochs=20)
    assert words(two_phase.verdicts(worse)) == ["contradicts"] * 9
    # Within the seeds' noise (±5 points, 0 on average): inconclusive.
    noisy = two_phase.analyse({"baseline": baseline,
                               "with_momentum": two_phase_runs(lambda t, s: (0.55, 0.69, 0.62)[s]),
                               "without_momentum": two_phase_runs(lambda t, s: (0.70, 0.59, 0.62)[s])}, epochs=20)
    assert words(two_phase.verdicts(noisy)) == ["inconclusive"] * 9
    # One seed of two-phase runs: every bin rests on n = 1 seed, not comparable; the momentum claim pairs runs by
    # seed and transition epoch, 7 pairs here, equal within the margin.
    one = two_phase.analyse({"baseline": baseline, "with_momentum": two_phase_runs(lambda t, s: 0.7, seeds=(0,)),
                             "without_momentum": two_phase_runs(lambda t, s: 0.7, seeds=(0,))}, epochs=20)
    claims = two_phase.verdicts(one)
    assert words(claims) == ["not comparable"] * 8 + ["supports"] and claims[8][1].effect.n == 7


@pytest.mark.slow(160)
def test_smoke_run_writes_the_page_and_numbers_from_the_run_directories(tmp_path):
    output, work = tmp_path / "page", tmp_path / "work"
    # `python scripts/reproduce_leclerc_madry.py ...`, forked from the preloaded server (its folder first on the
    # path, as there); the sweeps' points are forked by the same server.
    result = run_cli("reproduce_leclerc_madry", "--smoke", f"--output={output}", f"--work_dir={work}",
                     cwd=REPO / "scripts", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (output / "README.md").read_text()
    assert "## Convex baseline" in page and "## Learning rate and momentum" in page
    convex_results = json.loads((output / "convex.json").read_text())
    assert set(convex_results["momenta"]) == {"0.0", "0.5", "0.9", "0.95"}
    for entry in convex_results["momenta"].values():
        assert entry["final_loss"] == pytest.approx(min(entry["grid_final_loss"]), rel=1e-6)  # The grid's best η.
        assert f"| {entry['momentum']} | {entry['best_learning_rate']:.3g} |" in page
    for claim, verdict, _ in convex.verdicts(convex_results):
        assert f"**{claim}**: {verdict.word}." in page
    runs = json.loads((output / "lr_momentum.json").read_text())["runs"]
    assert len(runs) == 4
    for run in runs:  # Every number comes from the run's own directory.
        name = lr_momentum.Point(run["momentum"], run["learning_rate"], run["seed"]).name
        metrics = json.loads((work / "smoke" / lr_momentum.SWEEP / name / "metrics.json").read_text())
        assert run["test_accuracy"] == metrics["test_accuracy"] and metrics["epochs_run"] == 2
    phases = json.loads((output / "two_phase.json").read_text())["runs"]
    assert set(phases) == {"baseline", "with_momentum", "without_momentum"}
    for name, points in phases.items():
        state = json.loads((work / "smoke" / name / "sweep.json").read_text())
        assert [p["state"] for p in state["points"]] == ["done"] * len(points)
        for point, run in zip(state["points"], points):
            metrics = json.loads((work / "smoke" / name / point["run_dir"] / "metrics.json").read_text())
            assert run["test_accuracy"] == metrics["test_accuracy"]
    assert "## Two phases against three stages" in page
    assert (output / "convex_baseline.png").stat().st_size > 10_000
    assert (output / "lr_momentum.png").stat().st_size > 10_000
