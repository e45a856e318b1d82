"""Sweeps as a library call (`tfregimes.sweep.make_spec` / `run_sweep`): the spec the CLI would build, the shell
command recorded in sweep.json, and a caller whose own absl flags share names with the training flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import REPO

from tfregimes.sweep import SweepSpecError, make_spec, sweep_command
from tfregimes.sweep.spec import parse_axis


def test_make_spec_takes_python_values_and_gives_the_text_the_cli_records():
    spec = make_spec({"learning_rate": "0.050", "nesterov": True, "hidden_sizes": (16, 8), "epochs": 2},
                     grid=["batch_size=32,128"], seeds=3, metrics=["sharpness"])
    # What absl parses back from `--learning_rate=0.050 --nesterov --hidden_sizes=16,8 --epochs=2`.
    assert spec.base == {"learning_rate": "0.05", "nesterov": "true", "hidden_sizes": "16,8", "epochs": "2"}
    assert spec.seeds == ["0", "1", "2"] and spec.grid == {"batch_size": ["32", "128"]}
    command = sweep_command(spec, "sweeps/x")
    assert command[:3] == ["python", "-m", "tfregimes.sweep"] and command[-1] == "--sweep_dir=sweeps/x"
    assert "--grid=batch_size=32,128" in command and "--seeds=0,1,2" in command and "--metrics=sharpness" in command
    lists = make_spec({}, grid=["lr_boundaries=15,25;20,28"])
    [axis] = [a for a in sweep_command(lists, "d") if a.startswith("--grid=")]
    assert parse_axis(axis.removeprefix("--grid="), "grid") == ("lr_boundaries", ["15,25", "20,28"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(base={"batch_sizes": 32}), "--batch_sizes is not a flag of tfregimes.train"),
    (dict(base={"batch_size": 0}), "--batch_size=0"),
    (dict(base={"model_dir": "x"}), "--model_dir"),
    (dict(base={"batch_size": 32}, grid=["batch_size=16,32"]), "both a shared flag and an axis"),
    (dict(metrics=["sharpnes"]), "--metrics: unknown sharpnes"),
])
def test_make_spec_refuses_a_bad_flag_naming_it(kwargs, message):
    with pytest.raises(SweepSpecError, match=message):
        make_spec(**kwargs)


# A researcher's script: its own --batch_size on the global FLAGS, parsed before the sweep, then a 2-point sweep.
_SCRIPT = """
import sys
from absl import flags
flags.DEFINE_integer("batch_size", 7, "the script's own flag")
flags.FLAGS(["script", "--batch_size=9"])
from tfregimes.sweep import make_executor, make_spec, run_sweep
spec = make_spec({"dataset": "digits", "model": "mlp", "hidden_sizes": 16, "epochs": 1, "train_subset": 128,
                  "batch_size": 32, "lr_schedule": "constant", "verbose": 0}, seeds=2)
counts = run_sweep(spec, sys.argv[1], executor=make_executor("local", max_parallel=2))
assert counts["done"] == 2, counts
assert flags.FLAGS.batch_size == 9 and flags.FLAGS["batch_size"].present, "the caller's flag was touched"
"""


@pytest.mark.slow(60)
def test_a_python_sweep_leaves_the_callers_flags_and_records_a_command_that_resumes_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    sweep_dir = tmp_path / "sweep"
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(_SCRIPT), str(sweep_dir)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    recorded = json.loads((sweep_dir / "sweep.json").read_text())
    assert [p["state"] for p in recorded["points"]] == ["done", "done"]
    command = recorded["command"]
    assert command[:3] == ["python", "-m", "tfregimes.sweep"] and "--seeds=0,1" in command
    assert json.loads((sweep_dir / "seed-1" / "metrics.json").read_text())["epochs_run"] == 1
    # The shell command builds the same spec (else it would refuse the directory) and finds nothing to run.
    rerun = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "2 already finished, 0 to run" in rerun.stdout
