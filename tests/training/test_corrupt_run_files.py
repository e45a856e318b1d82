"""A finished run whose metrics.json (or data.json) was damaged after it was written: rerunning its command is
refused in one line that names the file and how to go on, never a raw JSON error nor a silent overwrite; following
the hint recomputes the same final metrics from the last checkpoint."""

import dataclasses
import shutil

import pytest

from tfregimes.training import RunConfigError, train_and_evaluate


@pytest.fixture
def copied_run(tiny_run, tmp_path):
    config, result = tiny_run
    run = tmp_path / "run"
    shutil.copytree(result.run_dir.root, run)
    return dataclasses.replace(config, model_dir=str(run)), result, run


def _truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def test_a_truncated_metrics_json_is_refused_in_one_line_and_the_hint_recomputes_it(copied_run):
    config, result, run = copied_run
    _truncate(run / "metrics.json")
    with pytest.raises(RunConfigError) as refused:
        train_and_evaluate(config)
    message = str(refused.value)
    assert message.startswith(f"{run}/metrics.json: not valid JSON (truncated?): ") and "\n" not in message
    assert f"Remove {run}/metrics.json and rerun the same command" in message
    (run / "metrics.json").unlink()
    again = train_and_evaluate(config)
    assert not again.already_complete
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "epochs_run"):
        assert again.metrics[key] == pytest.approx(result.metrics[key], rel=1e-6), key


def test_a_truncated_data_json_is_refused_in_one_line(copied_run):
    config, _, run = copied_run
    _truncate(run / "data.json")
    with pytest.raises(RunConfigError, match=rf"^{run}/data.json: not valid JSON \(truncated\?\): .*Start a new run "
                                             r"with another --model_dir, or remove .*data.json"):
        train_and_evaluate(config)
