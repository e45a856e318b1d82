"""tfregimes.report: the figures' data series against the run files, Kendall's τ against scipy and a hand count,
and whole reports of a tiny sweep and of a run with every training diagnostic."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from result_fixtures import make_explore_run
from scipy import stats

from tfregimes.report import (
    build_report,
    figures_run,
    figures_sweep,
    kendall,
    rank_measures,
)
from tfregimes.report.events import last_histogram
from tfregimes.report.style import EVENT_COLOR, PHASE_COLOR
from tfregimes.results import collect, group_summary, load_runs


def record_of(run_dir):
    (record,), _ = load_runs([run_dir])
    return record


def vertical_lines(axis, color):
    return sorted(line.get_xdata()[0] for line in axis.lines if line.get_color() == color)


def test_learning_curves_and_learning_rate_plot_history_csv(diagnostics_run):
    history = pd.read_csv(diagnostics_run / "history.csv")
    loss, accuracy = figures_run.learning_curves(record_of(diagnostics_run)).axes
    for axis, (train, test) in ((loss, ("loss", "val_loss")), (accuracy, ("accuracy", "val_accuracy"))):
        np.testing.assert_array_equal(axis.lines[0].get_xdata(), history["epoch"])
        np.testing.assert_array_equal(axis.lines[0].get_ydata(), history[train])
        np.testing.assert_array_equal(axis.lines[1].get_ydata(), history[test])
        assert vertical_lines(axis, PHASE_COLOR) == [2]  # --transition_epoch=2: phase 2 starts after epoch 2
    (axis,) = figures_run.learning_rate(record_of(diagnostics_run)).axes
    np.testing.assert_array_equal(axis.lines[0].get_ydata(), history["learning_rate"])


def test_exploration_decisions_are_marked_where_history_records_them(tmp_path):
    run_dir = make_explore_run(tmp_path / "explore")
    history = pd.read_csv(run_dir / "history.csv")
    decided = history.loc[history["lr_event"].notna(), "epoch"].tolist()
    assert decided == [2, 3]  # flat after epoch 2, decay one epoch later (extra_exploration_epochs=1)
    for axis in figures_run.learning_curves(record_of(run_dir)).axes:
        assert vertical_lines(axis, EVENT_COLOR) == decided
        assert [t.get_text() for t in axis.texts] == ["flat", "decay"]


def test_diagnostic_figures_plot_the_logged_series(diagnostics_run):
    record = record_of(diagnostics_run)
    history = pd.read_csv(diagnostics_run / "history.csv")
    (axis,) = figures_run.angular_update(record).axes
    np.testing.assert_array_equal(axis.lines[0].get_ydata(), history["angular_update"])
    layers = [json.loads(line)["layers"] for line in
              (diagnostics_run / "diagnostics" / "angular_update_layers.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(axis.lines[1].get_ydata(), [np.median(list(layer.values())) for layer in layers])

    effective, norm, tuning = figures_run.effective_learning_rate(record).axes
    np.testing.assert_array_equal(effective.lines[0].get_ydata(), history["effective_lr"])
    np.testing.assert_array_equal(norm.lines[0].get_ydata(), history["weight_norm"])
    np.testing.assert_array_equal(tuning.lines[0].get_ydata(), history["tuning_factor"])

    scale, alignment = figures_run.momentum(record).axes
    logged = history.dropna(subset=["momentum_scale"])
    np.testing.assert_array_equal(scale.lines[0].get_xdata(), logged["epoch"])
    np.testing.assert_array_equal(scale.lines[0].get_ydata(), logged["momentum_scale"])
    # 1/(1−μ), one segment per SGD phase (epochs 1–2 and 3–4); both phases have μ = 0.9.
    limits = [collection.get_segments()[0] for collection in scale.collections]
    np.testing.assert_allclose([(x0, x1, y0, y1) for (x0, y0), (x1, y1) in limits],
                               [(0.5, 2.5, 10.0, 10.0), (2.5, 4.5, 10.0, 10.0)])
    series = sorted(json.loads((diagnostics_run / "diagnostics" / "momentum_alignment.json").read_text()),
                    key=lambda r: r["epoch"])
    series = [r for r in series if r["alignment"] is not None]
    np.testing.assert_array_equal(alignment.lines[0].get_ydata(), [r["alignment"] for r in series])

    histogram = last_histogram(diagnostics_run / "tensorboard" / "diagnostics")
    quartiles, final = figures_run.margins(record, histogram).axes
    medians = next(line for line in quartiles.lines if line.get_label() == "median")
    np.testing.assert_array_equal(medians.get_ydata(), history["margin_median"])
    assert histogram[0] == 4  # the last epoch
    heights = [patch.get_height() for patch in final.patches]
    assert sum(heights) == 128  # every one of the --margin_samples=128 margins is finite and counted once


def test_kendall_tau_against_a_hand_count_and_scipy():
    # One swapped pair among C(4,2) = 6: 5 concordant, 1 discordant, τ = (5 − 1)/6.
    tau, p_value, n = kendall([1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0])
    assert tau == pytest.approx(4 / 6) and n == 4
    assert p_value == pytest.approx(stats.kendalltau([1, 2, 3, 4], [10, 30, 20, 40]).pvalue)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    b[3] = np.nan  # left out, not counted
    expected = stats.kendalltau(np.delete(a, 3), np.delete(b, 3))
    assert kendall(a, b) == pytest.approx((expected.statistic, expected.pvalue, 11))
    assert np.isnan(kendall([1.0, 2.0], [1.0, 2.0])[0])


def test_ranking_leaves_out_diverged_runs_and_sorts_by_strength():
    gap = [0.1, 0.2, 0.3, 0.4, 0.5]
    # The diverged row has numbers (e.g. a point the sweep marked diverged): counted, it would break τ = ±1.
    df = pd.DataFrame({"state": ["done"] * 5 + ["diverged"], "gap_accuracy": gap + [0.0],
                       "gap_loss": gap + [0.0], "sharp": [1.0, 2.0, 3.0, 4.0, 5.0, 100.0],
                       "margin": [5.0, 4.0, 3.0, 2.0, 1.0, 100.0], "noise": [1.0, 3.0, 2.0, 2.5, 1.5, 0.0]})
    ranking = rank_measures(df, ["noise", "margin", "sharp"]).set_index("measure")
    assert ranking.loc["sharp", "tau/gap_accuracy"] == pytest.approx(1.0)
    assert ranking.loc["margin", "tau/gap_loss"] == pytest.approx(-1.0)
    assert ranking.loc["sharp", "n/gap_accuracy"] == 5
    assert ranking.index[-1] == "noise"


def test_sweep_figures_plot_seed_means_and_stds(sweep_dir):
    df = collect([sweep_dir])
    figure = figures_sweep.metrics_vs_x(df, "batch_size", ["test_accuracy", "margins"], "t")
    for axis, column in zip(figure.axes, ["test_accuracy", "margins"]):
        (bars,) = axis.containers  # the diverged learning rate has no done run: no line for it
        line = bars.lines[0]
        np.testing.assert_array_equal(line.get_xdata(), [16, 64])
        expected = [np.mean(df.loc[(df["batch_size"] == b) & (df["state"] == "done"), column]) for b in (16, 64)]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
        low, high = bars.lines[2][0].get_segments()[0][:, 1]
        std = np.std(df.loc[(df["batch_size"] == 16) & (df["state"] == "done"), column], ddof=1)
        assert (high - low) / 2 == pytest.approx(std)


def test_sweep_report_has_every_section(sweep_dir, tmp_path):
    report = build_report([sweep_dir], tmp_path / "report", formats=("md", "html"))
    text = report.documents["md"].read_text()
    assert set(report.figures) == {"accuracy_gap_vs_x", "measures_vs_x", "learning_curves"}
    assert all(path.stat().st_size > 10_000 for path in report.figures.values())
    summary = group_summary(collect([sweep_dir]))
    assert f"{summary.loc[0, 'test_loss/mean']:.4g} ± {summary.loc[0, 'test_loss/std']:.4g}" in text
    assert ("| batch_size=16,learning_rate=1e9,seed=0 | diverged | epoch 1 (1-based, as history.csv counts), batch"
            in text)
    assert "python -m tfregimes.sweep --flagfile=flags/smoke.cfg" in text
    assert "`python -m tfregimes.train --flagfile=flags/smoke.cfg --batch_size=64 --seed=1`" in text
    assert f"python -m tfregimes.report {sweep_dir}" in text
    ranking = report.tables["ranking"].set_index("measure")
    assert set(ranking.index) == {"sharpness/full_eps1e-3", "margins"}
    assert (ranking["n/gap_accuracy"] == 4).all()
    html = report.documents["html"].read_text()
    assert html.count('src="data:image/png;base64,') == 3 and "http" not in html
    with pytest.raises(ValueError, match="--x=momentum: not a varied flag .* batch_size, learning_rate, seed"):
        build_report([sweep_dir], tmp_path / "bad", x="momentum")


def test_run_report_has_every_figure_and_the_minimum_metrics(diagnostics_run, tmp_path):
    report = build_report(diagnostics_run, tmp_path / "report")
    assert set(report.figures) == {"learning_curves", "learning_rate", "angular_update", "effective_lr",
                                   "momentum", "margins"}
    evaluation = json.loads((diagnostics_run / "evaluation.json").read_text())
    table = report.tables["minimum_metrics"].set_index("metric")
    sharpness = evaluation["sharpness"]["full_eps1e-3"]
    assert table.loc["sharpness/full_eps1e-3", "value"] == sharpness["value"]
    assert f"status={sharpness['status']}" in table.loc["sharpness/full_eps1e-3", "details"]
    text = report.documents["md"].read_text()
    assert "--diagnostics=angular,elr,momentum,margins" in text  # the command from flags.cfg
    assert "| transition_epoch | 2 | 0 |" in text  # a flag that differs from its default


def test_report_cli(sweep_dir, tmp_path):
    result = run_cli("tfregimes.report", str(sweep_dir), f"--output={tmp_path}", "--x=batch_size")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.md").exists() and (tmp_path / "figures" / "measures_vs_x.png").exists()
    assert "sharpness/full_eps1e-3" in result.stdout  # the ranking is printed


def test_several_plain_run_directories_make_a_sweep_report(sweep_dir, tmp_path):
    runs = [sweep_dir / "batch_size=16,seed=0", sweep_dir / "batch_size=64,seed=0", sweep_dir / "batch_size=64,seed=1"]
    report = build_report(runs, tmp_path)
    assert report.tables["runs"].attrs["varied_flags"] == ["batch_size", "seed"]
    summary = report.tables["summary"].set_index("batch_size")
    assert summary.loc[64, "done"] == 2 and summary.loc[16, "done"] == 1
    assert np.isnan(summary.loc[16, "test_accuracy/std"])  # one run: no standard deviation
    assert "Sweep `" not in report.documents["md"].read_text()  # no sweep.json: only the runs' own commands
