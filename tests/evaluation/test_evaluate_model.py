"""`tfregimes.evaluation.evaluate_model` is what `python -m tfregimes.evaluate` runs: the same JSON for the same
arguments, and flags whose defaults are the dataclasses' (nothing retyped)."""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import run_cli, run_script

from tfregimes.diagnostics.adapters import MetricSettings
from tfregimes.evaluation import EvaluationConfig, evaluate_model, metric_entries, scalar_tags, scalar_values


def without_seconds(value):
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    return [without_seconds(v) for v in value] if isinstance(value, list) else value


def comparable(value):
    """`value` without its timings and with its floats approximate (float32 sums differ in their last bits between
    processes): what two evaluations by the same arguments share."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return pytest.approx(value, rel=1e-4, abs=1e-9) if isinstance(value, float) else value


def test_evaluate_model_returns_the_json_the_cli_writes(tiny_run, tmp_path):
    _, result = tiny_run
    export = str(result.run_dir.export_dir)
    output = tmp_path / "evaluation.json"
    completed = run_cli("tfregimes.evaluate", f"--model={export}", "--dataset=synthetic", f"--output={output}",
                        "--metrics=sharpness,margins,hessian_top", "--metrics_samples=64", "--sharpness_eps=1e-3",
                        "--sharpness_maxiter=2", "--sharpness_subspace_dim=4", "--hessian_iterations=3", "--seed=2")
    assert completed.returncode == 0, completed.stderr
    written = json.loads(output.read_text())
    settings = MetricSettings(sample_size=64, sharpness_epsilons=(1e-3,), sharpness_maxiter=2,
                              sharpness_subspace_dim=4, hessian_iterations=3, seed=2)
    config = EvaluationConfig(model=export, dataset="synthetic", output=str(output),
                              metrics=("sharpness", "margins", "hessian_top"), settings=settings)
    returned = evaluate_model(config)
    assert written.pop("command").startswith(f"python -m tfregimes.evaluate --model={export}")
    returned_json = json.loads(json.dumps(returned))  # Tuples as lists, as the file has them.
    assert list(returned_json) == list(written)
    assert without_seconds(written) == comparable(returned_json)
    # Flat: one entry per (space, ε), with its settings, named as the results table names its columns.
    entries = metric_entries(returned)
    assert list(entries) == ["sharpness/full_eps1e-3", "sharpness/subspace_eps1e-3", "margins", "hessian_top"]
    assert entries["sharpness/subspace_eps1e-3"]["space"] == "subspace"
    assert entries["sharpness/subspace_eps1e-3"]["epsilon"] == 1e-3
    assert list(scalar_values(returned)) == scalar_tags(config)  # What a sweep declares is what is written.


FLAG_DEFAULTS = textwrap.dedent("""
    import dataclasses, sys
    from absl import flags
    from tfregimes.cli import evaluate
    from tfregimes.diagnostics.adapters import MetricSettings
    from tfregimes.evaluation import EvaluationConfig
    from tfregimes.evaluation.config import METRIC_FLAGS
    flags.FLAGS(["evaluate", "--model=m", "--dataset=synthetic"])
    config = evaluate.config_from_flags()
    assert config == EvaluationConfig(model="m", dataset="synthetic"), config
    fields = {f.name for cls in (EvaluationConfig, MetricSettings) for f in dataclasses.fields(cls)}
    own = {flag.name for flag in flags.FLAGS.get_flags_for_module(evaluate)}
    strays = sorted(name for name in own if METRIC_FLAGS.get(name, name) not in fields)
    assert not strays, f"flags that are no config field: {strays}"
    print("ok")
""")


def test_every_evaluate_flag_defaults_to_its_dataclass_default(tmp_path):
    # In a process of its own: the evaluate and train CLIs define flags of the same names in absl's global FLAGS.
    completed = run_script(FLAG_DEFAULTS, tmp_path)
    assert completed.returncode == 0 and completed.stdout.strip() == "ok", completed.stderr
