"""tfregimes.report: the figures' data series against the run files; the measure ranking on runs whose answer is
known (a copy of the training loss explains nothing beyond fit, Ψ per flag against a hand count, the training-loss
baseline row); and whole reports of a tiny sweep and of a run with every training diagnostic."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from result_fixtures import make_explore_run

from tfregimes.analysis import kendall_tau
from tfregimes.report import (
    build_report,
    figures_run,
    figures_sweep,
    rank_measures,
    ranking_cells,
)
from tfregimes.report.events import last_histogram
from tfregimes.report.style import EVENT_COLOR, PHASE_COLOR
from tfregimes.results import collect, group_summary, load_runs, markdown_table


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


def fit_and_beyond(n=30, seed=1):
    """30 runs whose gap is train_loss + info: `fit_copy` is the training loss plus noise (it ranks the gap only
    through the fit), `informed` is `info` plus noise (what the training loss does not say)."""
    rng = np.random.default_rng(seed)
    train_loss, info = rng.uniform(size=n), rng.uniform(size=n)
    gap = train_loss + info
    df = pd.DataFrame({"state": "done", "train_loss": train_loss, "gap_accuracy": gap, "gap_loss": gap,
                       "fit_copy": train_loss + rng.normal(scale=0.05, size=n),
                       "informed": info + rng.normal(scale=0.05, size=n)})
    df.attrs["varied_flags"] = ["batch_size", "seed"]
    return df


def test_a_measure_that_only_copies_the_training_loss_ranks_well_but_explains_nothing_beyond_fit():
    ranking = rank_measures(fit_and_beyond(), ["fit_copy", "informed"]).set_index("measure")
    copy, informed = ranking.loc["fit_copy"], ranking.loc["informed"]
    assert copy["tau/gap_accuracy"] > 0.4 and copy["tau_low/gap_accuracy"] > 0  # It ranks the gap well …
    # … through the training loss only. (Kendall's partial τ is not exactly 0 when x and y are independent given
    # z, hence the loose bound: the CI is what the column reads.)
    assert abs(copy["partial/gap_accuracy"]) < 0.15
    assert copy["partial_low/gap_accuracy"] < 0 < copy["partial_high/gap_accuracy"]
    assert copy["beyond_fit/gap_accuracy"] == "no"
    # `informed` ranks the gap about as well as the copy, and its partial τ given the training loss excludes 0.
    assert informed["partial_low/gap_accuracy"] > 0.3 and informed["beyond_fit/gap_accuracy"] == "yes"
    taus = ranking["tau/gap_accuracy"].abs()
    assert (taus.diff().dropna() <= 0).all()  # Sorted by |τ| against the first gap, the baseline among them.


def test_the_training_loss_is_the_baseline_row():
    df = fit_and_beyond()
    ranking = rank_measures(df, ["fit_copy", "informed"]).set_index("measure")
    baseline = ranking.loc["train_loss"]
    assert baseline["role"] == "baseline" and (ranking["role"] == "baseline").sum() == 1
    expected = kendall_tau(df["train_loss"], df["gap_loss"])
    assert (baseline["tau/gap_loss"], baseline["tau_low/gap_loss"], baseline["tau_high/gap_loss"]) == \
        pytest.approx((expected.estimate, expected.low, expected.high))
    assert np.isnan(baseline["partial/gap_loss"]) and pd.isna(baseline["beyond_fit/gap_loss"])
    header, rows = ranking_cells(ranking.reset_index(), "gap_loss")
    (row,) = [r for r in rows if r[0] == "train_loss (baseline)"]
    assert row[header.index("partial τ given train_loss [95 % CI]")] == "—"
    assert row[header.index("beyond fit?")] == "—"
    assert row[header.index("τ [95 % CI]")] == \
        f"{expected.estimate:.2f} [{expected.low:.2f}, {expected.high:.2f}]"


def test_psi_per_flag_on_a_factorial_table_matches_a_hand_count():
    # a ∈ {1, 2, 3} × b ∈ {x, y}, one seed. Only a varies: b = x orders (m, gap) (1, 1), (2, 3), (3, 4): τ = +1;
    # b = y (1.5, 3), (2.5, 2), (3.5, 1): τ = −1; so Ψ_a = 0. Only b varies: a = 1 (1, 1)/(1.5, 3) concordant,
    # a = 2 (2, 3)/(2.5, 2) and a = 3 (3, 4)/(3.5, 1) discordant: Ψ_b = (1 − 1 − 1)/3. Ψ = (0 − 1/3)/2.
    df = pd.DataFrame({"a": [1, 2, 3, 1, 2, 3], "b": ["x"] * 3 + ["y"] * 3, "seed": 0, "state": "done",
                       "m": [1.0, 2.0, 3.0, 1.5, 2.5, 3.5], "gap_accuracy": [1.0, 3.0, 4.0, 3.0, 2.0, 1.0],
                       "train_loss": [0.1, 0.5, 0.2, 0.4, 0.3, 0.6]})
    df["gap_loss"] = df["gap_accuracy"]
    df.attrs["varied_flags"] = ["a", "b", "seed"]
    ranking = rank_measures(df, ["m"])
    row = ranking.set_index("measure").loc["m"]
    assert row["psi_a/gap_accuracy"] == pytest.approx(0.0)
    assert row["psi_b/gap_accuracy"] == pytest.approx(-1 / 3)
    assert row["psi/gap_accuracy"] == pytest.approx(-1 / 6)
    assert ranking.attrs["axes"] == ["a", "b"] and ranking.attrs["psi_why"] == ""
    header, rows = ranking_cells(ranking, "gap_accuracy")
    (cells,) = [r for r in rows if r[0] == "m"]
    assert cells[header.index("Ψ")] == "-0.17" and cells[header.index("Ψ per flag")] == "a 0.00, b -0.33"


def test_psi_needs_two_varied_flags_besides_the_seed():
    ranking = rank_measures(fit_and_beyond(), ["informed"])  # Varied: batch_size and seed.
    assert ranking["psi/gap_accuracy"].isna().all()
    assert "at least 2 varied flags besides --seed (varied: batch_size)" in ranking.attrs["psi_why"]


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
    assert "train_loss" not in ranking.index  # No training loss in the table: no baseline, no partial τ.
    assert ranking["partial/gap_accuracy"].isna().all()


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
    assert ("| batch_size=16,learning_rate=1e9,seed=0 | diverged | non-finite loss at epoch 1 (1-based, as history.csv "
            "counts), batch"
            in text)
    assert "python -m tfregimes.sweep --flagfile=flags/smoke.cfg" in text
    assert "`python -m tfregimes.train --flagfile=flags/smoke.cfg --batch_size=64 --seed=1`" in text
    assert f"python -m tfregimes.report {sweep_dir}" in text
    ranking = report.tables["ranking"].set_index("measure")
    assert set(ranking.index) == {"train_loss", "sharpness/full_eps1e-3", "margins"}
    assert (ranking["n/gap_accuracy"] == 4).all()
    # No run was trained to a stop target (no stop/ columns): the minima are not compared at equal training loss.
    assert ("Runs compared at the same training loss? no: not every run was trained to a stop target "
            "(--stop_at_train_loss or --stop_at_train_accuracy).") in text
    for gap in ("gap_accuracy", "gap_loss"):
        header, rows = ranking_cells(report.tables["ranking"], gap)
        assert f"### Against {gap}" in text and markdown_table(header, rows) in text
    assert "| partial τ given train_loss [95 % CI] | beyond fit? | Ψ | Ψ per flag |" in text
    assert "| train_loss (baseline) |" in text and "Jiang et al. 2020" in text
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
    sharpness = evaluation["sharpness/full_eps1e-3"]
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
