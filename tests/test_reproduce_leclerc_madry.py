"""scripts/reproduce_leclerc_madry.py: heavy ball on a quadratic against closed forms, and the --smoke pipeline."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reproduce_leclerc_madry",
                                                  REPO / "scripts" / "reproduce_leclerc_madry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradient_descent_loss_equals_its_closed_form(script):
    # μ = 0: in A's eigenbasis c_i ← (1 − 2ηλ_i) c_i, so f_T = Σ λ_i (1 − 2ηλ_i)^{2T} c_i².
    a, eigenvalues, basis = script.make_quadratic(6, 1e3, seed=3)
    start = np.random.default_rng(4).standard_normal(6)
    c, lrs, steps = basis.T @ start, np.array([1e-5, 1e-4, 4e-4]), 200
    expected = [np.sum(eigenvalues * (1 - 2 * lr * eigenvalues) ** (2 * steps) * c ** 2) for lr in lrs]
    np.testing.assert_allclose(script.final_losses_in_eigenbasis(eigenvalues, c, 0.0, lrs, steps), expected,
                               rtol=1e-9)
    curves = script.heavy_ball_curves(a, start, 0.0, float(lrs[1]), steps, record_at=[steps])
    np.testing.assert_allclose(curves["loss"][-1], expected[1], rtol=1e-8)


def test_eigenbasis_grid_equals_the_original_basis_with_momentum(script):
    a, eigenvalues, basis = script.make_quadratic(8, 1e4, seed=0)
    start = np.random.default_rng(1).standard_normal(8)
    grid = script.final_losses_in_eigenbasis(eigenvalues, basis.T @ start, 0.9, [3e-6, 3e-5, 1.0], 150)
    direct = script.heavy_ball_curves(a, start, 0.9, 3e-5, 150, record_at=[])["loss"][-1]
    np.testing.assert_allclose(grid[1], direct, rtol=1e-8)
    assert grid[2] == np.inf  # η = 1 diverges (η·2λ_max ≫ 2(1 + μ)): recorded as inf, not NaN.


def test_scale_and_alignment_reach_the_one_dimensional_closed_form(script):
    # f = w² (λ = 1): w_t ∝ ρ^t with ρ the larger root of ρ² − (1 + μ − 2η)ρ + μ = 0 (overdamped), so
    # v_t = w_t − w_{t−1} = w_t (1 − 1/ρ) and r_t = |v_t| / (η·2|w_t|) → (1/ρ − 1)/(2η); v points at x* = 0.
    mu, lr = 0.9, 1e-4
    rho = max(np.roots([1.0, -(1 + mu - 2 * lr), mu]).real)
    a = np.array([[1.0]])
    curves = script.heavy_ball_curves(a, [1.0], mu, lr, 3000, record_at=[3000])
    np.testing.assert_allclose(curves["scale"][-1], (1 / rho - 1) / (2 * lr), rtol=1e-6)
    np.testing.assert_allclose(curves["alignment"][-1], 1.0, atol=1e-12)
    assert abs(curves["scale"][-1] * (1 - mu) - 1) < 0.03  # ≈ 1/(1 − μ) when 2η ≪ (1 − μ)².


def test_smoke_run_writes_the_page_and_its_numbers(tmp_path, script):
    result = subprocess.run([sys.executable, "scripts/reproduce_leclerc_madry.py", "--smoke", f"--output={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    page = (tmp_path / "README.md").read_text()
    assert (tmp_path / "convex_baseline.png").stat().st_size > 10_000
    assert set(results["momenta"]) == {"0.0", "0.5", "0.9", "0.95"}
    for entry in results["momenta"].values():
        grid = np.array(entry["grid_final_loss"])
        assert entry["final_loss"] == pytest.approx(grid.min(), rel=1e-6)  # The curve's η is the grid's best.
        assert f"| {entry['momentum']} | {entry['best_learning_rate']:.3g} |" in page
    for claim, verdict, _ in script.verdicts(results):
        assert f"**{claim}**: {verdict}." in page
