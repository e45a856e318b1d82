"""scripts/reproduce_yun.py: the network it trains is scale-invariant, the marked cells share eq. 27's tuning factor,
the table / angular / transfer analyses on constructed runs whose answer is known, and the --smoke pipeline."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import REPO

from tfregimes.cli.train_flag_rules import parse_run_config
from tfregimes.diagnostics.dynamics.learning_rate import tuning_factor
from tfregimes.models import build_model
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


def test_table_finds_the_marked_cells_when_accuracy_follows_the_tuning_factor():
    columns = tables_part.columns(GRID, "sizes")
    # Accuracy a function of log2 T alone, best at the marked T, plus a seed term that averages out.
    runs = records_where(lambda c, j, s: peaked(math.log2(GRID.column_tuning_factor(c, j) / 0.16)) + 0.001 * (s - 1),
                         GRID, columns)
    analysis = tables.analyse_table(runs, GRID, columns, "num_train")
    assert [c["marked_rank"] for c in analysis["columns"]] == [1, 1, 1, 1]
    assert [c["best_weight_decay"] for c in analysis["columns"]] == pytest.approx([0.04, 0.02, 0.01, 0.005])
    assert analysis["best_slope"] == pytest.approx(-1.0)
    assert analysis["columns"][0]["cells"]["3"]["mean"] == pytest.approx(0.9)
    assert analysis["columns"][0]["cells"]["3"]["std"] == pytest.approx(0.001)
    assert tables.verdict(analysis, "claim")[1] == "holds"
    # Accuracy a function of λ alone (best at λ = 0.01 whatever N): the best cell leaves the marked row.
    fixed = records_where(lambda c, j, s: peaked(j - 1.2), GRID, columns)
    fixed_analysis = tables.analyse_table(fixed, GRID, columns, "num_train")
    assert [c["marked_rank"] for c in fixed_analysis["columns"]] == [3, 2, 1, 3]
    assert [c["best"] for c in fixed_analysis["columns"]] == [1, 1, 1, 1]
    assert fixed_analysis["best_slope"] == pytest.approx(0.0)
    # Marked in the top two in 2 of 4 columns, by the window alone: the slope 0 says the best λ ignores N.
    assert tables.verdict(fixed_analysis, "claim")[1] == "does not hold"


def test_table_leaves_diverged_runs_out_and_blanks_cells_where_all_diverged():
    columns = tables_part.columns(GRID, "batch")
    runs = records_where(lambda c, j, s: 0.5 + 0.1 * s, GRID, columns,
                         diverge=lambda c, j, s: j == GRID.marked_exponent(c) + 2 and (c.batch_size == 64 or s == 0))
    analysis = tables.analyse_table(runs, GRID, columns, "batch_size")
    b64, b128 = analysis["columns"][0], analysis["columns"][1]
    assert b64["cells"]["2"] == {"exponent": 2, "runs": 3, "diverged": 3, "mean": pytest.approx(math.nan,
                                                                                                 nan_ok=True),
                                 "std": pytest.approx(math.nan, nan_ok=True)}
    assert 2 not in b64["order"] and len(b64["order"]) == 4
    assert b128["cells"]["3"]["mean"] == pytest.approx(0.65)  # Seeds 1 and 2 only: (0.6 + 0.7) / 2.
    table = "\n".join(tables.markdown(analysis, GRID))
    assert "diverged (3/3)" in table and "(1/3 div.)" in table and "◆" in table


def test_angular_analysis_against_eq_27():
    columns = tables_part.columns(GRID, "sizes")
    predicted = math.acos(1 - 0.16)

    def runs_with(settled_of):
        runs = records_where(lambda c, j, s: 0.5, GRID, columns)
        for run in runs:  # A transient of 3 epochs, then the settled value until the rate drops at epoch 10.
            column = Column(run["num_train"], run["batch_size"])
            value = settled_of(column, run["exponent"])
            run["angular_update"] = [3 * value, 2 * value, 1.5 * value] + [value] * 7 + [value / 10] * 10
        return runs

    # Δθ = c·√T (eq. 27 for small T, times c): one value for every marked cell, ×√2 per λ step.
    for c, expected in ((1.0, "holds"), (0.3, "does not hold")):
        runs = runs_with(lambda col, j, c=c: c * math.sqrt(2 * GRID.column_tuning_factor(col, j)))
        analysis = angular.analyse_angular(runs, GRID, columns)
        assert analysis["window"] == [5, 10]
        assert analysis["spread"] == pytest.approx(1.0)
        assert analysis["row_ratio"] == pytest.approx(math.sqrt(2))
        assert analysis["ratio_to_predicted"] == pytest.approx(c * math.sqrt(0.32) / predicted)
        assert [v for _, v, _ in angular.verdicts(analysis, "N")] == ["holds", expected]
    # Settled values that grow with N at a fixed tuning factor: no common value.
    runs = runs_with(lambda col, j: 0.05 * col.num_train / 256 * math.sqrt(2) ** (j - GRID.marked_exponent(col)))
    analysis = angular.analyse_angular(runs, GRID, columns)
    assert analysis["spread"] == pytest.approx(8.0)
    assert angular.verdicts(analysis, "N")[0][1] == "does not hold"


def test_transfer_carries_the_subset_best_by_the_tuning_factor():
    columns = [Column(256, 64), Column(2048, 64)]
    follows = records_where(lambda c, j, s: peaked(math.log2(GRID.column_tuning_factor(c, j) / 0.32)), GRID, columns)
    analysis = transfer.analyse_transfer(follows, GRID)
    assert (analysis["best_small"], analysis["transferred"], analysis["best_full"]) == pytest.approx((0.08, 0.01,
                                                                                                      0.01))
    assert analysis["transferred_rank"] == 1 and analysis["steps_from_best"] == 0
    assert transfer.verdicts(analysis)[0][1] == "holds"
    ignores = records_where(lambda c, j, s: peaked(j - 4) + 0.01 * s, GRID, columns)  # Best λ = 0.08 whatever N.
    analysis = transfer.analyse_transfer(ignores, GRID)
    assert (analysis["transferred"], analysis["best_full"]) == pytest.approx((0.01, 0.02))
    assert analysis["transferred_rank"] == 2 and analysis["steps_from_best"] == 1
    assert transfer.verdicts(analysis)[0][1] == "partly"  # 0.9 − 0.01·(3² − 2²) = 5 points lower, std 1 point.


@pytest.mark.slow(40)
def test_smoke_run_writes_the_page_from_the_sweeps(tmp_path):
    output, work = tmp_path / "page", tmp_path / "work"
    result = subprocess.run([sys.executable, "scripts/reproduce_yun.py", "--smoke", f"--output={output}",
                             f"--work_dir={work}", "--max_parallel=2"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
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
    for claim, verdict, _ in transfer.verdicts(json.loads((output / "transfer.json").read_text())["analysis"]):
        assert f"**{claim}**: {verdict}." in page
    assert (output / "sizes.png").stat().st_size > 10_000 and (output / "batch.png").stat().st_size > 10_000
