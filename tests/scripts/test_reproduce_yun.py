"""scripts/reproduce_yun.py: the network it trains is scale-invariant, the marked cells share eq. 27's tuning factor,
the table / angular / transfer analyses on constructed runs whose answer is known, and the --smoke pipeline."""

import dataclasses
import json
import math
import sys

import keras
import numpy as np
import pytest
from helpers import REPO, run_cli

from tfregimes.analysis import WORDS
from tfregimes.diagnostics.dynamics.learning_rate import tuning_factor
from tfregimes.models import build_model
from tfregimes.training.run_flag_rules import parse_run_config
from tfregimes.training.trainer import model_options

sys.path.insert(0, str(REPO / "scripts"))
from yun import angular, tables, tables_part, transfer  # noqa: E402
from yun.setting import Column, Setting, read_column, setting, sweep_argv, train_flags  # noqa: E402

GRID = Setting(sizes=(256, 512, 1024, 2048), batch_sizes=(64, 128, 256), offsets=(-2, -1, 0, 1, 2), seeds=(0, 1, 2),
               epochs=20, reference_weight_decay=5e-3)


def test_network_of_the_runs_is_scale_invariant_in_each_conv_kernel():
    # Seed 002 §3.1: every conv is followed by (ghost) BN, so scaling one kernel leaves the training-mode output as
    # it was; the model is built from the very flags the sweeps pass to tfregimes.train.
    config = parse_run_config(train_flags(setting(smoke=False), Column(512, 64)) + ["--weight_decay=0.01"])
    options = model_options(config)
    assert (config.model, options.stem, options.ghost_batch_size) == ("scale_invariant_resnet_tiny", "imagenet", 64)
    network = build_model(config.model, input_shape=(28, 28, 1), num_classes=10, options=options)
    assert not network.get_layer("logits").trainable  # The fixed last layer.
    x = np.random.default_rng(0).normal(size=(128, 28, 28, 1)).astype("float32")  # Two ghost batches.
    before = np.asarray(network(x, training=True))
    kernels = [v for v in network.trainable_variables if v.path.endswith("kernel")]
    assert len(kernels) == 6  # Stem, two convs per block, the second stage's projection shortcut.
    for kernel in kernels:
        kernel.assign(3.0 * kernel)
        np.testing.assert_allclose(np.asarray(network(x, training=True)), before, rtol=1e-4, atol=1e-4)
    # A fixed last layer is what makes it so: a trainable dense head on the same features would scale its logits.
    head = network.get_layer("logits").kernel
    head.assign(2.0 * head)
    np.testing.assert_allclose(np.asarray(network(x, training=True)), 2.0 * before, rtol=1e-4, atol=1e-4)
    keras.backend.clear_session()


def test_marked_cells_share_the_tuning_factor_and_sit_on_the_grid():
    reference = tuning_factor(num_train=2048, learning_rate=0.1, weight_decay=5e-3, batch_size=64, momentum=0.9)
    assert GRID.marked_tuning_factor == pytest.approx(reference) == pytest.approx(0.16)
    for column, exponent in ((Column(256, 64), 3), (Column(1024, 64), 1), (Column(2048, 256), 2)):
        assert GRID.marked_exponent(column) == exponent  # λ·N/B held: ×8, ×2, ×4 the reference λ.
        assert GRID.column_tuning_factor(column, exponent) == pytest.approx(reference)
        assert GRID.row_exponents(column) == [exponent - 2, exponent - 1, exponent, exponent + 1, exponent + 2]
    argv = sweep_argv(GRID, Column(256, 64), REPO / "w", max_parallel=2)
    assert "--grid=weight_decay=0.01,0.02,0.04,0.08,0.16" in argv and "--threads_per_run=1" in argv
    with pytest.raises(ValueError, match="powers of two"):
        GRID.marked_exponent(Column(3000, 64))


def records_where(accuracy_of, grid: Setting, columns, diverge=lambda column, j, seed: False):
    """One run per cell and seed of each column's window, its accuracy `accuracy_of(column, exponent, seed)`."""
    runs = []
    for column in columns:
        for j in grid.row_exponents(column):
            for seed in grid.seeds:
                diverged = diverge(column, j, seed)
                runs.append({"num_train": column.num_train, "batch_size": column.batch_size, "exponent": j,
                             "weight_decay": grid.weight_decay(j), "seed": seed, "diverged": diverged,
                             "test_accuracy": None if diverged else accuracy_of(column, j, seed), "wall_seconds": 1.0,
                             "angular_update": [0.1] * grid.epochs})
    return runs


def peaked(x: float) -> float:
    return 0.9 - 0.01 * x ** 2


def jitter(column: Column, j: int, seed: int, scale: float) -> float:
    """Seed noise in [−scale, scale], drawn afresh for every cell and seed (so paired differences have a spread)."""
    return scale * np.random.default_rng([column.num_train, column.batch_size, j + 100, seed]).uniform(-1, 1)


def words(claims) -> list[str]:
    return [verdict.word for _, verdict, _ in claims]


def test_table_claims_on_columns_whose_answer_is_known():
    columns = tables_part.columns(GRID, "sizes")
    # Accuracy a function of log2 T alone, best at the marked T (one point ahead of its neighbours), seed noise of
    # ±0.05 points: every marked cell is clearly its column's best.
    follows = records_where(lambda c, j, s: peaked(math.log2(GRID.column_tuning_factor(c, j) / 0.16))
                            + jitter(c, j, s, 0.0005), GRID, columns)
    analysis = tables.analyse_table(follows, GRID, columns, "num_train")
    assert [c["marked_rank"] for c in analysis["columns"]] == [1, 1, 1, 1]
    assert [c["best_weight_decay"] for c in analysis["columns"]] == pytest.approx([0.04, 0.02, 0.01, 0.005])
    assert analysis["best_slope"] == pytest.approx(-1.0)
    n256 = analysis["columns"][0]
    assert n256["cells"][3]["summary"].mean == pytest.approx(0.9, abs=0.001)
    assert n256["cells"][3]["summary"].n == 3
    assert n256["effect"].estimate == pytest.approx(1.0, abs=0.1)  # Points ahead of the runner-up, λ ×2 or ÷2.
    assert words(tables.claims(analysis)) == ["supports"] * 4
    # Accuracy a function of λ alone (best at λ = 0.01 whatever N): the marked cell trails the best one by 0.6 to
    # 3.2 points where it is not λ = 0.01 (N = 1024, which leads its runner-up by 0.6).
    fixed = records_where(lambda c, j, s: peaked(j - 1.2) + jitter(c, j, s, 0.0005), GRID, columns)
    fixed_analysis = tables.analyse_table(fixed, GRID, columns, "num_train")
    assert [c["marked_rank"] for c in fixed_analysis["columns"]] == [3, 2, 1, 3]
    assert [c["best"] for c in fixed_analysis["columns"]] == [1, 1, 1, 1]
    assert [c["best_other"] for c in fixed_analysis["columns"]] == [1, 1, 2, 1]
    assert fixed_analysis["best_slope"] == pytest.approx(0.0)
    assert fixed_analysis["columns"][1]["effect"].estimate == pytest.approx(-0.6, abs=0.1)
    assert words(tables.claims(fixed_analysis)) == ["contradicts", "contradicts", "supports", "contradicts"]
    # A flat column: every λ the same but for seed noise of ±1 point: no cell can be called the best.
    flat = records_where(lambda c, j, s: 0.8 + jitter(c, j, s, 0.01), GRID, columns)
    assert words(tables.claims(tables.analyse_table(flat, GRID, columns, "num_train"))) == ["inconclusive"] * 4
    # Two seeds: n < 3 pairs, whatever the gap.
    two = dataclasses.replace(GRID, seeds=(0, 1))
    few = records_where(lambda c, j, s: peaked(j - 1.2) + jitter(c, j, s, 0.0005), two, columns)
    claims = tables.claims(tables.analyse_table(few, two, columns, "num_train"))
    assert words(claims) == ["not comparable"] * 4
    assert "n = 2 < 3" in claims[0][1].text()
    claim, verdict, numbers = tables.claims(analysis)[0]
    assert claim == "The marked λ (equal tuning factor) is the best of the N = 256 column"
    assert "paired by seed" in verdict.text() and "same schedule" in verdict.comparability.why
    assert "marked λ = 0.04: 89.99 ± " in numbers and "(n = 3)" in numbers and "98.75 % CI" in verdict.text()


def test_table_leaves_diverged_runs_out_and_blanks_cells_where_all_diverged():
    columns = tables_part.columns(GRID, "batch")
    runs = records_where(lambda c, j, s: 0.5 + 0.1 * s, GRID, columns,
                         diverge=lambda c, j, s: j == GRID.marked_exponent(c) + 2 and (c.batch_size == 64 or s == 0))
    analysis = tables.analyse_table(runs, GRID, columns, "batch_size")
    b64, b128 = analysis["columns"][0], analysis["columns"][1]
    cell = b64["cells"][2]
    assert (cell["runs"], cell["diverged"], cell["summary"].n) == (3, 3, 0) and math.isnan(cell["summary"].mean)
    assert cell["accuracy"] == {0: None, 1: None, 2: None}
    assert 2 not in b64["order"] and len(b64["order"]) == 4
    assert b128["cells"][3]["summary"].mean == pytest.approx(0.65)  # Seeds 1 and 2 only: (0.6 + 0.7) / 2.
    table = "\n".join(tables.markdown(analysis, GRID))
    assert "diverged (3/3)" in table and "(1/3 div.)" in table and "◆" in table and "65 ± 7.071 (n = 2)" in table


def angular_runs(settled_of, columns, noise=lambda column, seed: 1.0):
    """Runs whose Δθ has a transient of 3 epochs, then the settled value (times `noise`) until the rate drops at
    epoch 10."""
    runs = records_where(lambda c, j, s: 0.5, GRID, columns)
    for run in runs:
        column = Column(run["num_train"], run["batch_size"])
        value = settled_of(column, run["exponent"]) * noise(column, run["seed"])
        run["angular_update"] = [3 * value, 2 * value, 1.5 * value] + [value] * 7 + [value / 10] * 10
    return runs


def test_angular_claims_against_eq_27():
    columns = tables_part.columns(GRID, "sizes")
    predicted = math.acos(1 - 0.16)
    small = lambda column, seed: 1 + jitter(column, 0, seed, 0.01)  # noqa: E731
    # Δθ = c·√(2T) (eq. 27 for small T, times c): one value for every marked cell, ±1 % seed noise.
    for c, expected in ((1.0, "supports"), (0.3, "contradicts")):
        runs = angular_runs(lambda col, j, c=c: c * math.sqrt(2 * GRID.column_tuning_factor(col, j)), columns,
                            small)
        analysis = angular.analyse_angular(runs, GRID, columns)
        assert analysis["window"] == [5, 10]
        assert analysis["same_margin"] == pytest.approx(0.5 * math.log(math.acos(1 - 0.32) / predicted))
        assert analysis["to_predicted"].estimate == pytest.approx(math.log(c * math.sqrt(0.32) / predicted),
                                                                  abs=0.01)
        assert analysis["to_predicted"].n == 12
        assert words(angular.claims(analysis, "N")) == ["supports"] * 3 + [expected]
    # Settled values that grow with N at a fixed tuning factor (×2 per column): no common value.
    runs = angular_runs(lambda col, j: 0.05 * col.num_train / 256 * math.sqrt(2) ** (j - GRID.marked_exponent(col)),
                        columns, small)
    analysis = angular.analyse_angular(runs, GRID, columns)
    assert [c["effect"].estimate for c in analysis["columns"] if not c["reference"]] == pytest.approx(
        [math.log(1 / 8), math.log(1 / 4), math.log(1 / 2)], abs=0.03)
    assert words(angular.claims(analysis, "N"))[:3] == ["contradicts"] * 3
    # The same value in every cell but ±30 % seed noise: no telling.
    runs = angular_runs(lambda col, j: 0.5, columns, lambda column, seed: 1 + jitter(column, 0, seed, 0.3))
    assert words(angular.claims(angular.analyse_angular(runs, GRID, columns), "N"))[:3] == ["inconclusive"] * 3


def test_transfer_carries_the_subset_best_by_the_tuning_factor():
    columns = [Column(256, 64), Column(2048, 64)]
    follows = records_where(lambda c, j, s: peaked(math.log2(GRID.column_tuning_factor(c, j) / 0.32))
                            + jitter(c, j, s, 0.0005), GRID, columns)
    analysis = transfer.analyse_transfer(follows, GRID)
    assert (analysis["on_small"]["best"], analysis["transferred"], analysis["on_full"]["best"]) == (4, 1, 1)
    assert analysis["transferred_rank"] == 1 and analysis["best_other"] in (0, 2)
    assert words(transfer.claims(analysis, GRID)) == ["supports"]
    ignores = records_where(lambda c, j, s: peaked(j - 4) + 0.01 * s + jitter(c, j, s, 0.0005), GRID, columns)
    analysis = transfer.analyse_transfer(ignores, GRID)  # Best λ = 0.08 whatever N: 0.02 on N = 2048's window.
    assert (analysis["transferred"], analysis["best_other"]) == (1, 2)
    assert analysis["transferred_rank"] == 2
    assert analysis["effect"].estimate == pytest.approx(-5.0, abs=0.1)  # 0.9 − 0.01·(3² − 2²): 5 points lower.
    assert words(transfer.claims(analysis, GRID)) == ["contradicts"]
    flat = records_where(lambda c, j, s: 0.8 + jitter(c, j, s, 0.01), GRID, columns)
    assert words(transfer.claims(transfer.analyse_transfer(flat, GRID), GRID)) == ["inconclusive"]


def claim_lines_of(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("- **")]


@pytest.mark.slow(60)
def test_smoke_run_writes_the_page_from_the_sweeps_and_notrain_rewrites_it(tmp_path):
    output, work = tmp_path / "page", tmp_path / "work"
    # `python scripts/reproduce_yun.py ...`, forked from the preloaded server (its folder first on the path, as
    # there); the sweeps' points are forked by the same server.
    command = ["reproduce_yun", "--smoke", f"--output={output}", f"--work_dir={work}", "--max_parallel=2"]
    result = run_cli(*command, cwd=REPO / "scripts", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (output / "README.md").read_text()
    for title in ("## Table 1", "## Table 3", "## Efficient search"):
        assert title in page
    grid = setting(smoke=True)
    sizes = json.loads((output / "sizes.json").read_text())
    assert len(sizes["runs"]) == len(grid.sizes) * len(grid.offsets) * len(grid.seeds)
    for column in tables_part.columns(grid, "sizes"):  # Every number comes from the sweep's own run directories.
        state = json.loads((work / "smoke" / column.name / "sweep.json").read_text())
        assert [p["state"] for p in state["points"]] == ["done"]
        metrics = json.loads((work / "smoke" / column.name / state["points"][0]["run_dir"] / "metrics.json")
                             .read_text())
        run, = read_column(grid, column, work / "smoke")
        assert run["test_accuracy"] == metrics["test_accuracy"] and len(run["angular_update"]) == grid.epochs
        assert run in sizes["runs"]
    assert sizes["analysis"]["angular"]["predicted"] == pytest.approx(math.acos(1 - grid.marked_tuning_factor))
    assert (output / "sizes.png").stat().st_size > 10_000 and (output / "batch.png").stat().st_size > 10_000
    lines = claim_lines_of(page)
    assert len(lines) == 7  # sizes: 2 columns + 1 pair + eq. 27; batch: 1 column + eq. 27; transfer: 1.
    # --notrain: the page again from the same runs, training nothing; the same claims, each said with the rule.
    (output / "README.md").unlink()
    result = run_cli(*command, "--notrain", cwd=REPO / "scripts", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep:" not in result.stdout  # No sweep was run or resumed.
    renewed = claim_lines_of((output / "README.md").read_text())
    assert [line.partition("**: ")[2].partition(".")[0] for line in renewed] == \
        [line.partition("**: ")[2].partition(".")[0] for line in lines]
    for line in renewed:
        word = line.partition("**: ")[2].partition(". ")[0]
        assert word in WORDS, line
        # One seed: n < 3 everywhere, said as the rule's clause, with the effect and why the runs compare.
        assert f"({word}: " in line and "claimed " in line and "compared: " in line, line
        assert "not comparable: n = " in line and "< 3 per side" in line, line
    for stale in ("holds", "partly", "does not hold", "second best"):
        assert stale not in "\n".join(renewed)
