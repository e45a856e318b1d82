"""A run whose files cannot be read is never dropped: `results` and `report` show it (state corrupt, with why),
count it in its group, leave it out of the statistics with a warning line and exit 1. A directory with no run in
it is skipped. Fabricated run directories (tests/result_fixtures.py), no training."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from result_fixtures import FABRICATED_POINTS, make_fabricated_sweep

from tfregimes.report import build_report
from tfregimes.results import collect, group_summary, summary_markdown

BROKEN = "batch_size=16,seed=1"


def accuracies(batch_size: str, leave_out=()) -> list[float]:
    return [accuracy for name, overrides, accuracy in FABRICATED_POINTS
            if overrides["batch_size"] == batch_size and name not in leave_out]


@pytest.fixture
def broken_sweep(tmp_path):
    """A fabricated sweep whose point BROKEN has a metrics.json cut in half (a torn write, a full disk)."""
    sweep = make_fabricated_sweep(tmp_path / "sweep")
    metrics = sweep / BROKEN / "metrics.json"
    text = metrics.read_text()
    metrics.write_text(text[: len(text) // 2])
    return sweep


def test_a_corrupt_run_is_a_row_counted_in_its_group_and_left_out_of_its_mean(broken_sweep):
    df = collect([broken_sweep]).set_index("run")
    assert df.loc[BROKEN, "state"] == "corrupt"
    assert df.loc[BROKEN, "reason"].startswith("metrics.json: not valid JSON (truncated?)")
    assert np.isnan(df.loc[BROKEN, "test_accuracy"])
    summary = group_summary(df.reset_index(), ["batch_size"], ["test_accuracy"]).set_index("batch_size")
    assert summary.loc[16, ["runs", "done", "diverged", "corrupt"]].tolist() == [2, 1, 0, 1]
    assert summary.loc[16, "test_accuracy/mean"] == pytest.approx(np.mean(accuracies("16", [BROKEN])))
    assert summary.loc[64, "test_accuracy/mean"] == pytest.approx(np.mean(accuracies("64")))
    assert summary.loc[64, "test_accuracy/std"] == pytest.approx(np.std(accuracies("64"), ddof=1))
    header = "| batch_size | runs | done | diverged | corrupt | test_accuracy |"
    assert header in summary_markdown(summary.reset_index())


def test_results_cli_warns_names_the_corrupt_run_and_exits_1(broken_sweep, tmp_path):
    output = tmp_path / "runs.csv"
    result = run_cli("tfregimes.results", str(broken_sweep), "--group_by=batch_size", "--columns=test_accuracy",
                     f"--output={output}")
    assert result.returncode == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"run {BROKEN} ({broken_sweep / BROKEN}) is corrupt: metrics.json: not valid " \
        "JSON" in warnings[0] and warnings[0].endswith("left out of the statistics"), result.stderr
    assert "4 runs (3 done, 1 corrupt)" in result.stdout
    mean_16, mean_64 = np.mean(accuracies("16", [BROKEN])), np.mean(accuracies("64"))
    std_64 = np.std(accuracies("64"), ddof=1)
    assert f"| 16 | 2 | 1 | 0 | 1 | {mean_16:.4g} |" in result.stdout, result.stdout
    assert f"| 64 | 2 | 2 | 0 | 0 | {mean_64:.4g} ± {std_64:.4g} |" in result.stdout, result.stdout
    written = pd.read_csv(output).set_index("run")
    assert written.loc[BROKEN, "state"] == "corrupt" and "metrics.json" in written.loc[BROKEN, "reason"]


def test_results_cli_on_readable_runs_exits_0_without_a_corrupt_column(tmp_path):
    sweep = make_fabricated_sweep(tmp_path / "sweep")
    result = run_cli("tfregimes.results", str(sweep), "--group_by=batch_size", "--columns=test_accuracy")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    assert "| batch_size | runs | done | diverged | test_accuracy |" in result.stdout


def test_report_lists_the_corrupt_run_leaves_it_out_and_the_cli_exits_1(broken_sweep, tmp_path):
    report = build_report([broken_sweep], tmp_path / "report")
    assert list(report.corrupt) == [BROKEN] and report.corrupt[BROKEN].startswith("metrics.json: not valid JSON")
    summary = report.tables["summary"].set_index("batch_size")
    assert summary.loc[16, ["runs", "done", "corrupt"]].tolist() == [2, 1, 1]
    assert summary.loc[16, "test_accuracy/mean"] == pytest.approx(np.mean(accuracies("16", [BROKEN])))
    text = report.documents["md"].read_text()
    assert f"| {BROKEN} | corrupt | {report.corrupt[BROKEN]} |" in text
    result = run_cli("tfregimes.report", str(broken_sweep), f"--output={tmp_path / 'cli'}")
    assert result.returncode == 1, result.stderr
    assert f"warning: run {BROKEN} is corrupt: metrics.json: not valid JSON" in result.stderr, result.stderr


def test_a_directory_with_no_run_in_it_is_skipped(tmp_path):
    runs = tmp_path / "runs"
    sweep = make_fabricated_sweep(tmp_path / "sweep")
    runs.mkdir()
    for name, _, _ in FABRICATED_POINTS[:2]:  # Plain run directories, out of their sweep.
        (sweep / name).rename(runs / name)
    (runs / "failed_start").mkdir()
    (runs / "failed_start" / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    as_folder = collect([runs])
    assert sorted(as_folder["run"]) == sorted(name for name, _, _ in FABRICATED_POINTS[:2])
    result = run_cli("tfregimes.results", *sorted(str(p) for p in runs.iterdir()))  # `results runs/*`
    assert result.returncode == 0, result.stderr
    assert f"note: {runs / 'failed_start'}: no run in it" in result.stderr
    assert "2 runs (2 done)" in result.stdout
