"""The run directory's contract (tfregimes.base.run_files): the state rule on hand-made run directories, the one
atomic writer's file mode, the flagfile reader and writer."""

import ast
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import (
    flagfile_text,
    parse_flagfile,
    run_state,
    write_json,
)
from tfregimes.config import run_config as config_lib

PACKAGE = Path(__file__).resolve().parents[2] / "tfregimes"
METRICS = {"train_loss": 0.1, "train_accuracy": 1.0, "test_loss": 0.4, "test_accuracy": 0.6, "diverged": False}


def started_run(root: Path) -> RunDirectory:
    run = RunDirectory(root)
    run.create()
    run.flags_path.write_text("# Started as: python -m tfregimes.train --seed=1\n--seed=1\n")
    return run


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def truncated(path: Path, data) -> None:
    text = json.dumps(data, indent=2)
    path.write_text(text[: len(text) // 2])


def test_done_and_diverged_come_from_metrics_json(tmp_path):
    done = started_run(tmp_path / "done")
    write_json(done.metrics_path, METRICS)
    assert run_state(done.root) == run_state(done.root, recorded={"state": "done"})
    assert (run_state(done.root).state, run_state(done.root).reason) == ("done", "")
    assert run_state(done.root).metrics["test_accuracy"] == 0.6
    diverged = started_run(tmp_path / "diverged")
    write_json(diverged.metrics_path, {**METRICS, "diverged": True, "diverged_at": {"epoch": 3, "batch": 7}})
    state = run_state(diverged.root)
    assert state.state == "diverged"
    assert state.reason == "non-finite loss at epoch 3 (1-based, as history.csv counts), batch 7"


def test_a_truncated_or_unreadable_result_is_corrupt_with_a_reason_naming_the_file(tmp_path):
    run = started_run(tmp_path / "truncated")
    truncated(run.metrics_path, METRICS)
    state = run_state(run.root)
    assert state.state == "corrupt" and state.metrics == {}
    assert state.reason.startswith("metrics.json: not valid JSON (truncated?): "), state.reason
    listed = started_run(tmp_path / "list")
    listed.metrics_path.write_text("[1, 2]\n")
    assert run_state(listed.root).reason == "metrics.json: a JSON list, not an object"
    evaluated = started_run(tmp_path / "evaluation")
    write_json(evaluated.metrics_path, METRICS)
    truncated(evaluated.evaluation_path, {"split": "test", "examples": 10, "loss": 0.4})
    state = run_state(evaluated.root, evaluation=evaluated.evaluation_path)
    assert state.state == "corrupt" and state.reason.startswith("evaluation.json: not valid JSON"), state
    assert run_state(evaluated.root).state == "done"  # Not asked for its evaluation.


def test_without_metrics_json_a_held_lock_is_running_a_dead_writer_failed_nothing_pending(tmp_path):
    run = started_run(tmp_path / "run")
    lock = run.lock()
    try:
        assert run_state(run.root).state == "running"
        assert run_state(run.root).reason == f"being written by process {os.getpid()} on {socket.gethostname()}"
    finally:
        lock.release()
    state = run_state(run.root)  # A released lock names nobody: the run ended without its metrics.
    assert state.state == "failed" and "before completing an epoch" in state.reason
    (run.root / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    run.write_progress(epochs_done=2, checkpoint="epoch-0002.weights.h5")
    assert run_state(run.root).reason == ("ended after epoch 2 (progress.json) without writing metrics.json; rerun "
                                          "its command to resume it")
    # Another host's pid cannot be checked: it counts as a live writer.
    (run.root / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": "elsewhere"}))
    assert run_state(run.root).state == "running"
    empty = tmp_path / "empty"
    (empty / ".lock").parent.mkdir()
    (empty / ".lock").write_text("")
    assert (run_state(empty).state, run_state(tmp_path / "absent").state) == ("pending", "pending")


def test_a_point_the_sweep_recorded_as_failed_stays_failed_with_its_error(tmp_path):
    run = started_run(tmp_path / "run")
    write_json(run.metrics_path, METRICS)  # Trained, but its evaluation failed.
    state = run_state(run.root, recorded={"state": "failed", "error": "tfregimes.evaluate exited with 1"})
    assert (state.state, state.reason) == ("failed", "tfregimes.evaluate exited with 1")


WRITE_EVERY_KIND = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from pathlib import Path
    from tfregimes.base.run_dir import RunDirectory
    from tfregimes.base.run_files import atomic_file, write_atomically, write_json
    root = Path(sys.argv[1])
    run = RunDirectory(root)
    write_json(run.metrics_path, {"test_accuracy": 0.5})
    write_atomically(root / "text.txt", "text")
    write_atomically(root / "bytes.bin", b"\\x00\\x01")
    with atomic_file(root / "arrays.npz", "wb", fsync=False) as f:
        np.savez(f, weights=np.zeros(3))
    with open(root / "plain.txt", "w") as f:  # How any new file gets its mode: the reference.
        f.write("plain")
    print(json.dumps({p.name: os.stat(p).st_mode & 0o777 for p in root.iterdir()}))
""")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_one_atomic_writer_gives_text_bytes_and_arrays_the_mode_of_metrics_json(tmp_path, umask):
    completed = subprocess.run([sys.executable, "-c", WRITE_EVERY_KIND, str(tmp_path)], capture_output=True,
                               text=True, timeout=60, preexec_fn=lambda: os.umask(umask), check=True)
    modes = json.loads(completed.stdout)
    assert modes == dict.fromkeys(["metrics.json", "text.txt", "bytes.bin", "arrays.npz", "plain.txt"],
                                  0o666 & ~umask)
    assert (tmp_path / "bytes.bin").read_bytes() == b"\x00\x01"


def test_no_module_but_run_files_writes_through_a_temporary_file_of_its_own():
    """Every atomic write goes through `atomic_file` (one mode, one cleanup): mkstemp and os.replace appear nowhere
    else in the package."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "run_files.py" and path.parent.name == "base":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (node.attr, getattr(node.value, "id", "")) in (
                    ("mkstemp", "tempfile"), ("replace", "os"), ("rename", "os")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []


def test_flagfile_reader_reads_what_the_writers_write():
    config = config_lib.RunConfig(seed=3, hidden_sizes=(8, 4), model_dir="runs/x")
    flagfile = parse_flagfile(config_lib.to_flagfile(config, ["python", "-m", "tfregimes.train", "--seed=3"]))
    assert flagfile.command == "python -m tfregimes.train --seed=3"
    assert flagfile.values == config_lib.parse_flagfile_values(config_lib.to_flagfile(config))
    assert flagfile.values["seed"] == "3" and flagfile.values["hidden_sizes"] == "8,4"
    assert "model_dir" not in flagfile.values  # Written as a comment: repeating the file makes a new run.
    text = flagfile_text({"a": "1", "b": "x y"}, comments=["base"], command=["run", "it now"], commented_out={"b"})
    assert text == "# base\n# Started as: run 'it now'\n--a=1\n# --b=x y\n"
    assert parse_flagfile(text) == parse_flagfile("  --a=1\n\n# Started as: run 'it now'\n")
