"""tfregimes.results: one row per run read back from the run files, and mean ± std per group against numpy."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from result_fixtures import SWEEP_POINTS

from tfregimes.results import collect, group_summary, measure_columns, summary_markdown


def test_one_row_per_sweep_point_with_its_files_numbers(sweep_dir):
    df = collect([sweep_dir])
    assert list(df["run"]) == [name for name, _ in SWEEP_POINTS]
    assert df.attrs["varied_flags"] == ["batch_size", "learning_rate", "seed"]
    for _, row in df.iterrows():
        run_dir = sweep_dir / row["run"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert row["diverged"] == metrics["diverged"]
        if metrics["diverged"]:
            assert row["state"] == "diverged" and math.isnan(row["test_accuracy"])
            continue
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        assert row["state"] == "done"
        assert row["test_accuracy"] == metrics["test_accuracy"] and row["wall_seconds"] == metrics["wall_seconds"]
        assert row["gap_accuracy"] == metrics["train_accuracy"] - metrics["test_accuracy"]
        assert row["gap_loss"] == metrics["test_loss"] - metrics["train_loss"]
        assert row["sharpness/full_eps1e-3"] == evaluation["sharpness/full_eps1e-3"]["value"]
        assert row["margins"] == evaluation["margins"]["value"]
        assert row["eval/test_accuracy"] == evaluation["accuracy"]
        assert f"--batch_size={row['batch_size']}" in row["command"]
    assert df.loc[df["state"] == "diverged", "learning_rate"].tolist() == [1e9]


def test_every_flag_of_every_run_is_a_column_varied_or_not(sweep_dir):
    """A script reads any setting from the frame: the flags no point varies too, as each run's flags.cfg says."""
    from tfregimes.config.run_config import parse_flagfile_values
    df = collect([sweep_dir])
    assert "dataset" in df.columns and "dataset" not in df.attrs["varied_flags"]
    assert df.attrs["flags"][:3] == ["batch_size", "learning_rate", "seed"]
    for _, row in df.iterrows():
        written = parse_flagfile_values((sweep_dir / row["run"] / "flags.cfg").read_text())
        assert set(written) <= set(df.attrs["flags"])
        assert str(row["dataset"]) == written["dataset"] and str(row["model"]) == written["model"]
        assert row["epochs"] == int(written["epochs"])
    assert "dataset" not in measure_columns(df)


def test_group_means_and_sample_stds_equal_numpy_and_leave_diverged_runs_out(sweep_dir):
    df = collect([sweep_dir])
    summary = group_summary(df, ["batch_size"], ["test_loss", "margins"]).set_index("batch_size")
    for batch_size in (16, 64):
        done = df[(df["batch_size"] == batch_size) & (df["state"] == "done")]
        assert len(done) == 2
        for column in ("test_loss", "margins"):
            assert summary.loc[batch_size, f"{column}/mean"] == pytest.approx(np.mean(done[column]), rel=1e-12)
            assert summary.loc[batch_size, f"{column}/std"] == pytest.approx(np.std(done[column], ddof=1), rel=1e-12)
            assert summary.loc[batch_size, f"{column}/n"] == 2
    assert summary.loc[16, "runs"] == 3 and summary.loc[16, "diverged"] == 1 and summary.loc[64, "diverged"] == 0


def test_default_groups_are_the_varied_flags_but_the_seed(sweep_dir):
    summary = group_summary(collect([sweep_dir]))
    assert summary.attrs["group_by"] == ["batch_size", "learning_rate"]
    assert len(summary) == 3
    text = summary_markdown(summary)
    mean, std = summary.loc[0, "test_loss/mean"], summary.loc[0, "test_loss/std"]
    assert "| 16 | 0.05 | 2 | 2 | 0 |" in text and f"{mean:.4g} ± {std:.4g}" in text
    assert "| 16 | 1e+09 | 1 | 0 | 1 |" in text


def test_plain_run_directories_vary_the_flags_that_differ(sweep_dir, diagnostics_run):
    runs = [sweep_dir / SWEEP_POINTS[0][0], sweep_dir / SWEEP_POINTS[3][0]]
    df = collect(runs)
    assert df.attrs["varied_flags"] == ["batch_size", "seed"]
    assert df["batch_size"].tolist() == [16, 64] and df["seed"].tolist() == [0, 1]
    history = pd.read_csv(diagnostics_run / "history.csv")
    row = collect([diagnostics_run]).iloc[0]
    assert row["final/angular_update"] == history["angular_update"].iloc[-1]
    assert row["final/momentum_scale"] == history["momentum_scale"].dropna().iloc[-1]
    assert row["final/margin_median"] == history["margin_median"].iloc[-1]


def test_unknown_group_flag_is_refused_naming_the_varied_flags(sweep_dir):
    with pytest.raises(ValueError, match="--group_by: momentun .*batch_size, learning_rate, seed"):
        group_summary(collect([sweep_dir]), ["momentun"])
    # A flag no run varies is a column too (collect keeps every flag): grouping by it makes one group.
    assert len(group_summary(collect([sweep_dir]), ["momentum"])) == 1
    with pytest.raises(ValueError, match="--columns: test_acc is not a column .* test_accuracy"):
        group_summary(collect([sweep_dir]), ["batch_size"], ["test_acc"])


def test_cli_writes_the_csv_and_prints_the_table(sweep_dir, tmp_path):
    output = tmp_path / "runs.csv"
    result = run_cli("tfregimes.results", str(sweep_dir), f"--output={output}", "--group_by=batch_size",
                     "--columns=test_accuracy")
    assert result.returncode == 0, result.stderr
    assert "5 runs (4 done, 1 diverged)" in result.stdout
    assert "| batch_size | runs | done | diverged | test_accuracy |" in result.stdout
    written = pd.read_csv(output)
    assert written["run"].tolist() == [name for name, _ in SWEEP_POINTS]
    bad = run_cli("tfregimes.results", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "not a run directory" in bad.stderr


@pytest.fixture(scope="module")
def stop_runs(tmp_path_factory):
    """Two runs with a stop (one reaches its target at once, one cannot) and one without."""
    from helpers import tiny_config

    from tfregimes.training import train_and_evaluate
    root = tmp_path_factory.mktemp("stops")
    settings = dict(epochs=2, lr_schedule="constant", lr_boundaries=())
    for name, changes in (("reached", dict(stop_at_train_loss=100.0)), ("short", dict(stop_at_train_accuracy=1.0,
                                                                                       stop_check_examples=50)),
                          ("none", {})):
        train_and_evaluate(tiny_config(root / name, **settings, **changes))
    return root


def test_stop_columns_come_from_metrics_json_and_runs_short_of_their_target_are_flagged(stop_runs):
    from tfregimes.results import short_of_target
    df = collect([stop_runs]).set_index("run")
    for run in ("reached", "short"):
        stop = json.loads((stop_runs / run / "metrics.json").read_text())["stop"]
        for field in ("criterion", "target", "reached_target", "stopped_at_epoch", "clean_loss", "clean_accuracy"):
            value = df.loc[run, f"stop/{field}"]
            assert value == stop[field] or (stop[field] is None and pd.isna(value)), (run, field)
    assert df.loc["reached", "stop/reached_target"] == True and df.loc["reached", "stop/stopped_at_epoch"] == 1  # noqa: E712
    assert pd.isna(df.loc["none", "stop/criterion"]) and pd.isna(df.loc["none", "stop/reached_target"])
    assert math.isnan(df.loc["none", "stop/target"]) and math.isnan(df.loc["none", "stop/clean_loss"])
    assert list(short_of_target(df.reset_index())["run"]) == ["short"]
    assert not any(column.startswith("stop/") for column in group_summary(df.reset_index(), []).attrs["columns"])
    result = run_cli("tfregimes.results", str(stop_runs), "--group_by=")
    assert result.returncode == 0, result.stderr
    clean = df.loc["short", "stop/clean_accuracy"]
    assert "! 1 of 3 runs did not reach their stop target" in result.stdout
    assert f"!   short: train accuracy >= 1 not reached in 2 epochs (clean accuracy {clean:.4g})" in result.stdout
