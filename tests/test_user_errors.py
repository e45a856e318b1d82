"""Errors a user can act on (issue 12, items 5, 6, 8, 9): hints that work when followed literally, refused flag
combinations, summaries that match the JSON, one-line errors in place of tracebacks."""

import json
import shlex

import pytest
from absl import flags

from conftest import run_cli
from tfregimes import train_flags
from tfregimes.training import RunConfigMismatch, train_and_evaluate

FLAGS = flags.FLAGS


def test_the_hint_for_changed_flags_resumes_the_run_when_followed_literally(tiny_run):
    config, result = tiny_run
    with pytest.raises(RunConfigMismatch) as raised:
        train_and_evaluate(config.replace(epochs=5))
    hint = str(raised.value).split("Resume it with: ")[1].split(" (or ")[0]
    assert hint == (f"python -m tfregimes.train --flagfile={result.run_dir.flags_path} "
                    f"--model_dir={result.run_dir.root}")
    completed = run_cli(*shlex.split(hint)[2:])
    assert completed.returncode == 0, completed.stderr
    assert "Run already complete" in completed.stdout and str(result.run_dir.root) in completed.stdout


def test_jit_compile_under_op_determinism_is_refused(tmp_path):
    try:
        with pytest.raises(flags.IllegalFlagValueError,
                           match="--jit_compile needs --nodeterministic: TensorFlow's op determinism turns XLA off"):
            FLAGS(["tfregimes.train", "--jit_compile"])
    finally:
        FLAGS.unparse_flags()
    try:
        FLAGS(["tfregimes.train", "--jit_compile", "--nodeterministic"])
        config = train_flags.config_from_flags()
        assert config.jit_compile and not config.deterministic
    finally:
        FLAGS.unparse_flags()


def test_evaluate_summary_counts_the_examples_the_json_reports(tiny_run, tmp_path):
    output = tmp_path / "eval.json"
    completed = run_cli("tfregimes.evaluate", f"--model={tiny_run[1].run_dir.export_dir}", "--dataset=synthetic",
                        "--metrics=robustness", "--metrics_samples=100", f"--output={output}")
    assert completed.returncode == 0, completed.stderr
    evaluation = json.loads(output.read_text())
    assert evaluation["examples"] == 256 and evaluation["metrics_examples"] == 100
    assert "(test split, 256 examples)" in completed.stdout
    assert "on the train split (a fixed sample of 100 of its 512 examples)" in completed.stdout
