"""`results` warns when it would compare runs trained on different data (the `data` digest each run's metrics.json
records): runs pooled in one group, or groups that differ in data though no grouping flag names it. Fabricated run
directories (tests/result_fixtures.py), no training."""

import json

import pytest
from helpers import run_cli
from result_fixtures import FABRICATED_POINTS, make_fabricated_sweep

from tfregimes.results import collect, data_mixes

OLD, NEW = "0123456789abcdef", "fedcba9876543210"


def _with_digests(sweep, digests):
    for name, _, _ in FABRICATED_POINTS:
        path = sweep / name / "metrics.json"
        metrics = json.loads(path.read_text())
        path.write_text(json.dumps({**metrics, "data": {"dataset": "npz:d.npz", "digest": digests.get(name, OLD)}}))
    return sweep


@pytest.fixture
def sweep(tmp_path):
    return make_fabricated_sweep(tmp_path / "sweep")


def test_one_data_everywhere_gives_no_warning(sweep):
    df = collect([_with_digests(sweep, {})])
    assert data_mixes(df, ["batch_size"]) == [] and data_mixes(df, []) == []


def test_a_group_pooling_two_data_is_named_with_its_runs(sweep):
    df = collect([_with_digests(sweep, {"batch_size=16,seed=1": NEW})])
    assert data_mixes(df, ["batch_size"]) == [
        f"group batch_size=16 mixes runs trained on different data (data {OLD}: batch_size=16,seed=0; data {NEW}: "
        "batch_size=16,seed=1); its statistics pool them"]
    [pooled] = data_mixes(df, [])
    assert pooled.startswith(f"group of all runs mixes runs trained on different data (data {OLD}: "
                             "batch_size=16,seed=0, batch_size=64,seed=0, batch_size=64,seed=1; data ")


def test_groups_on_different_data_are_named_unless_a_grouping_flag_names_the_data(sweep):
    df = collect([_with_digests(sweep, {"batch_size=64,seed=0": NEW, "batch_size=64,seed=1": NEW})])
    assert data_mixes(df, ["batch_size"]) == [
        f"the groups compared were trained on different data (data {OLD}: batch_size=16; data {NEW}: batch_size=64), "
        "and no grouping flag names the data"]
    assert data_mixes(df, ["batch_size", "dataset"]) == []


def test_results_cli_prints_the_warning_line(sweep):
    _with_digests(sweep, {"batch_size=16,seed=1": NEW})
    result = run_cli("tfregimes.results", str(sweep), "--group_by=batch_size", "--columns=test_accuracy")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert result.returncode == 0 and warnings == [
        f"warning: group batch_size=16 mixes runs trained on different data (data {OLD}: batch_size=16,seed=0; data "
        f"{NEW}: batch_size=16,seed=1); its statistics pool them"], result.stderr
