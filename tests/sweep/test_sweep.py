"""tfregimes.sweep: axes and point names, strict validation through train's own flag parsing, sweep.json, HParams,
and how points start (a sweep killed and rerun: test_sweep_faults.py)."""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, plugin_values, points_of, read_events, run_cli, sweep_env

from tfregimes.sweep import hparams
from tfregimes.sweep.engine import Progress
from tfregimes.sweep.point import PointJob, run_point
from tfregimes.sweep.spec import SweepSpecError, expand, make_spec, parse_axis, point_name, validate_points
from tfregimes.sweep.state import SweepState, spec_differences

# --- Axes and names --------------------------------------------------------------------------------------------


def test_grid_is_the_product_of_its_axes_with_seeds_innermost():
    spec = make_spec({}, grid=["batch_size=64,512", "learning_rate=1e-3,1e-2,0.1"], seeds=["0", "1"])
    points = expand(spec)
    assert len(points) == 2 * 3 * 2
    assert [p.overrides for p in points[:3]] == [
        {"batch_size": "64", "learning_rate": "1e-3", "seed": "0"},
        {"batch_size": "64", "learning_rate": "1e-3", "seed": "1"},
        {"batch_size": "64", "learning_rate": "1e-2", "seed": "0"}]
    assert points[-1].name == "batch_size-512_learning_rate-0.1_seed-1"
    assert len({p.name for p in points}) == 12


def test_zip_axes_vary_together_and_cross_the_grid():
    spec = make_spec({}, grid=["momentum=0.5,0.9"], zip_axes=["batch_size=64,512", "learning_rate=0.05,0.4"])
    pairs = {(p.overrides["batch_size"], p.overrides["learning_rate"]) for p in expand(spec)}
    assert pairs == {("64", "0.05"), ("512", "0.4")}
    assert len(expand(spec)) == 4
    with pytest.raises(SweepSpecError, match="as many values"):
        make_spec({}, zip_axes=["batch_size=64,512", "learning_rate=0.05"])


def test_list_valued_flag_values_are_separated_by_semicolons_and_names_stay_path_safe():
    name, values = parse_axis("lr_boundaries=15,25;20,28", "grid")
    assert (name, values) == ("lr_boundaries", ["15,25", "20,28"])
    assert point_name({"lr_boundaries": "15,25", "dataset": "npz:/a b.npz"}) == \
        "lr_boundaries-15_25_dataset-npz__a_b.npz"


def test_a_point_name_from_long_values_is_capped_and_still_distinct():
    """A 300-character value must not make a file name too long for the file system (255 bytes)."""
    long_a = {"dataset": "npz:/data/" + "a" * 300 + ".npz"}
    long_b = {"dataset": "npz:/data/" + "a" * 299 + "b.npz"}
    names = {point_name(long_a), point_name(long_b)}
    assert len(names) == 2 and all(len(name) == 120 for name in names)
    assert all(name.startswith("dataset-npz__data_aaaa") for name in names)
    short = {"batch_size": "32", "learning_rate": "0.1"}
    assert point_name(short) == "batch_size-32_learning_rate-0.1"  # Short names are left as they were.


def test_sample_draws_distinct_reproducible_points_inside_the_ranges():
    spec = make_spec({}, grid=["transition_epoch=5:20", "learning_rate=1e-3:1e-1:log", "momentum=0.5,0.9"],
                     seeds=["0", "1"], sample=6, sample_seed=3)
    points = expand(spec)
    assert points == expand(spec)  # Seeded.
    assert len(points) == 12 and [p.overrides["seed"] for p in points[:2]] == ["0", "1"]
    draws = [p.overrides for p in points[::2]]
    assert len({tuple(sorted(d.items())) for d in draws}) == 6
    for draw in draws:
        assert 5 <= int(draw["transition_epoch"]) <= 20 and draw["transition_epoch"].isdigit()
        assert 1e-3 <= float(draw["learning_rate"]) <= 0.1 and draw["momentum"] in ("0.5", "0.9")
    other = make_spec({}, grid=["transition_epoch=5:20", "learning_rate=1e-3:1e-1:log", "momentum=0.5,0.9"],
                      seeds=["0", "1"], sample=6, sample_seed=4)
    assert expand(other) != points


def test_sample_over_lists_only_takes_distinct_combinations_and_refuses_too_many():
    spec = make_spec({}, grid=["batch_size=32,64", "momentum=0.5,0.9"], sample=4)
    assert len({p.name for p in expand(spec)}) == 4
    with pytest.raises(SweepSpecError, match="only 4 combinations"):
        expand(make_spec({}, grid=["batch_size=32,64", "momentum=0.5,0.9"], sample=5))


@pytest.mark.parametrize("kwargs, message", [
    (dict(grid=["epochs=1:5"]), "only drawn from with --sample"),
    (dict(grid=["batch_size=32,32"]), "repeated"),
    (dict(grid=["batch_size"]), "expected NAME=V1,V2"),
    (dict(grid=["seed=1,2"], seeds=["0"]), "an axis twice"),
    (dict(grid=["batch_sizes=32,64"], flag_names=["batch_size"]), "not a flag of tfregimes.train"),
    (dict(grid=["model_dir=a,b"]), "model_dir cannot be an axis"),
    (dict(seeds=["0", "x"]), "distinct integers"),
])
def test_bad_axes_are_refused_naming_the_flag(kwargs, message):
    with pytest.raises(SweepSpecError, match=message):
        make_spec({}, **kwargs)


# --- Validation through the training CLI's own rules ------------------------------------------------------------

def test_every_point_is_checked_by_trains_own_flag_parsing_and_the_flags_of_this_process_are_untouched():
    from absl import flags

    from tfregimes.cli import train_flag_rules
    before = flags.FLAGS["batch_size"].value
    base = {"dataset": "synthetic", "model": "mlp", "epochs": "2", "lr_boundaries": "1"}
    points = expand(make_spec(base, grid=["batch_size=16,32"], seeds=["0", "5"]))
    configs = validate_points(points, base, train_flag_rules.parse_run_config)
    assert configs["batch_size-32_seed-5"].batch_size == 32 and configs["batch_size-32_seed-5"].seed == 5
    assert configs["batch_size-16_seed-0"].epochs == 2 and configs["batch_size-16_seed-0"].model == "mlp"
    assert flags.FLAGS["batch_size"].value == before and not flags.FLAGS["batch_size"].present
    # A combination check (check_flag_combinations) fails on one point only: the sweep names it and the flag.
    bad = expand(make_spec(base, grid=["optimizer=sgd,adam", "momentum=0.5"]))
    with pytest.raises(SweepSpecError, match=r"point optimizer-adam_momentum-0.5: --momentum only applies"):
        validate_points(bad, base, train_flag_rules.parse_run_config)
    # A value absl's parser rejects (lower_bound), and a cross-flag validator.
    with pytest.raises(SweepSpecError, match=r"point batch_size-0: .*--batch_size"):
        validate_points(expand(make_spec(base, grid=["batch_size=0"])), base, train_flag_rules.parse_run_config)
    with pytest.raises(SweepSpecError, match=r"point epochs-1: .*--lr_boundaries"):
        validate_points(expand(make_spec(base, grid=["epochs=1"])), base, train_flag_rules.parse_run_config)


@pytest.mark.parametrize("flagfile", sorted(p.name for p in (REPO / "flags" / "sweeps").glob("*.cfg")))
def test_every_shipped_sweep_flagfile_is_a_valid_sweep(flagfile):
    result = run_cli("tfregimes.sweep", f"--flagfile=flags/sweeps/{flagfile}", "--dry_run", env=sweep_env())
    assert result.returncode == 0, result.stderr[-3000:]
    if flagfile == "digits_batch.cfg":  # The sweep: 2 batch sizes x 2 seeds of the digits job.
        assert result.stdout.split("\n")[1:5] == ["  batch_size-64_seed-0", "  batch_size-64_seed-1",
                                                   "  batch_size-512_seed-0", "  batch_size-512_seed-1"]
    # A point train would refuse (momentum with adam) stops the sweep with exit status 2, naming point and flag.
    if flagfile == "digits_batch.cfg":
        bad = run_cli("tfregimes.sweep", f"--flagfile=flags/sweeps/{flagfile}", "--grid=momentum=0.5,0.9",
                      "--optimizer=adam", "--dry_run", env=sweep_env())
        assert bad.returncode == 2
        assert "error: point batch_size-64_momentum-0.5_seed-0: --momentum only applies" in bad.stderr


# --- sweep.json --------------------------------------------------------------------------------------------------

def test_state_resumes_records_and_refuses_another_spec_with_the_difference(tmp_path):
    spec = make_spec({"epochs": "2"}, grid=["batch_size=16,32"])
    points = expand(spec)
    state = SweepState(tmp_path, spec.to_json(), ["cmd"], points)
    state.update("batch_size-16", state="running")
    state.update("batch_size-16", state="done", wall_seconds=1.5)
    again = SweepState(tmp_path, spec.to_json(), ["cmd", "again"], points)
    recorded = json.loads((tmp_path / "sweep.json").read_text())
    assert recorded["command"] == ["cmd", "again"]
    assert [p["state"] for p in recorded["points"]] == ["done", "pending"]
    assert recorded["points"][0]["attempts"] == 1 and recorded["points"][0]["run_dir"] == "batch_size-16"
    assert [p["name"] for p in again.to_run()] == ["batch_size-32"]
    changed = make_spec({"epochs": "3"}, grid=["batch_size=16,64"])
    with pytest.raises(SweepSpecError) as error:
        SweepState(tmp_path, changed.to_json(), ["cmd"], expand(changed))
    assert "base.epochs: recorded '2', given '3'" in str(error.value)
    assert "grid.batch_size: recorded ['16', '32'], given ['16', '64']" in str(error.value)
    assert spec_differences({"a": 1}, {"a": 1}) == []


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_sweep_progress_is_a_plain_line_per_start_and_end_in_a_log_and_a_bar_on_a_terminal(tmp_path, terminal):
    spec = make_spec({"epochs": "2"}, grid=["batch_size=16,32"])
    state = SweepState(tmp_path, spec.to_json(), ["cmd"], expand(spec))
    out = _Terminal() if terminal else io.StringIO()
    progress = Progress(state, out)
    for name in ("batch_size-16", "batch_size-32"):
        progress.started(name)
        progress.finished(name, {"state": "done", "wall_seconds": 1.0})
    progress.close()
    text = out.getvalue()
    if terminal:
        assert "\r" in text and "2/2" in text
        return
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 4 and all(line.startswith("sweep: ") for line in lines)
    assert lines[-1].startswith("sweep: 2/2 finished (2 done, 0 diverged, 0 failed), 0 running, 0 left")


# --- One point ---------------------------------------------------------------------------------------------------

def test_a_diverged_run_is_a_result_and_is_not_evaluated(tmp_path):
    run_dir = tmp_path / "p"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"diverged": True}))
    job = PointJob(name="p", run_dir=str(run_dir), log=str(run_dir / "sweep.log"), train_argv=["--never-run"],
                   evaluate_argv=["--never-run"], evaluation=str(run_dir / "evaluation.json"), cwd=str(tmp_path))
    outcome = run_point(job)
    assert outcome["state"] == "diverged" and outcome["evaluation"] is None
    assert "$ " not in (run_dir / "sweep.log").read_text()  # Neither train nor evaluate was started.


def test_a_point_whose_metrics_json_is_truncated_fails_naming_the_file_and_is_not_evaluated(tmp_path):
    run_dir = tmp_path / "p"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"diverged": fal')
    job = PointJob(name="p", run_dir=str(run_dir), log=str(run_dir / "sweep.log"), train_argv=["--never-run"],
                   evaluate_argv=["--never-run"], evaluation=str(run_dir / "evaluation.json"), cwd=str(tmp_path))
    outcome = run_point(job)
    assert outcome["state"] == "failed" and outcome["error"].startswith("metrics.json: not valid JSON (truncated?)")
    assert "$ " not in (run_dir / "sweep.log").read_text()


def test_a_failing_run_is_failed_with_the_last_lines_of_its_log(tmp_path):
    run_dir = tmp_path / "p"
    job = PointJob(name="p", run_dir=str(run_dir), log=str(tmp_path / "p.log"),
                   train_argv=["--dataset=npz:missing.npz", f"--model_dir={run_dir}"], evaluate_argv=None,
                   evaluation=None, cwd=str(tmp_path), env={"PYTHONPATH": str(REPO)}, preloaded=True)
    outcome = run_point(job)
    assert outcome["state"] == "failed"
    assert "tfregimes.train exited with 2" in outcome["error"] and "missing.npz" in outcome["error"]


def test_a_point_is_evaluated_on_its_own_data_and_its_tags_are_the_declared_ones(tiny_run, tmp_path):
    from tfregimes.sweep.engine import evaluate_argv
    config, result = tiny_run
    run_dir = Path(result.run_dir.root)
    job = PointJob(name="p", run_dir=str(run_dir), log=str(tmp_path / "p.log"), train_argv=["--never-run"],
                   evaluate_argv=evaluate_argv(config, run_dir, ["margins"]),
                   evaluation=str(run_dir / "evaluation.json"), cwd=str(tmp_path), env={"PYTHONPATH": str(REPO)},
                   preloaded=True)
    outcome = run_point(job)
    assert outcome["state"] == "done", outcome
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    # The same test split, prepared as training prepared it: the trainer's own final test accuracy.
    assert evaluation["accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-6)
    assert math.isfinite(evaluation["margins"]["value"])
    written = {value.tag for event in read_events(run_dir / "tensorboard" / "evaluate")
               for value in event.summary.value}
    assert set(hparams.evaluate_metric_tags(["margins"])) == written


def test_run_sweep_records_the_contract_of_sweep_json_and_refuses_a_bad_point_before_writing(tiny_run, tmp_path):
    import shutil

    from tfregimes.cli import train_flag_rules
    from tfregimes.sweep.engine import run_sweep
    from tfregimes.sweep.local import LocalExecutor
    config, result = tiny_run
    base = {"dataset": "synthetic", "model": "mlp", "hidden_sizes": "32", "epochs": "3", "batch_size": "32",
            "lr_boundaries": "2", "verbose": "0"}
    with pytest.raises(SweepSpecError, match="point epochs-1: "):
        run_sweep(make_spec(base, grid=["epochs=1,3"]), tmp_path / "bad", LocalExecutor(),
                  train_flag_rules.parse_run_config)
    assert not (tmp_path / "bad").exists()
    # A point whose training and evaluation are already there: the sweep only records them (no subprocess).
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(result.run_dir.root, sweep_dir / "seed-0")
    (sweep_dir / "seed-0" / "evaluation.json").write_text("{}")
    spec = make_spec(base, seeds=["0"], metrics=["margins"])
    counts = run_sweep(spec, sweep_dir, LocalExecutor(), train_flag_rules.parse_run_config, command=["c"],
                       evaluate_tags=hparams.evaluate_metric_tags(["margins"]))
    assert counts == {"pending": 0, "running": 0, "done": 1, "diverged": 0, "failed": 0}
    recorded = json.loads((sweep_dir / "sweep.json").read_text())
    assert recorded["spec"] == spec.to_json() and recorded["command"] == ["c"]
    [point] = recorded["points"]
    assert {k: point[k] for k in ("name", "run_dir", "overrides", "state", "log", "error", "evaluation")} == {
        "name": "seed-0", "run_dir": "seed-0", "overrides": {"seed": "0"}, "state": "done",
        "log": "seed-0/sweep.log", "error": None, "evaluation": "seed-0/evaluation.json"}
    assert (sweep_dir / "base.cfg").read_text().splitlines()[1:] == [f"--{k}={v}" for k, v in base.items()]
    assert (sweep_dir / point["log"]).exists()


def test_the_local_pool_gives_each_point_the_least_busy_gpu():
    from tfregimes.sweep.local import LocalExecutor
    executor = LocalExecutor(max_parallel=3, gpus=["0", "1"])
    assert [executor._take_gpu() for _ in range(3)] == ["0", "1", "0"]
    executor._release_gpu("1")
    assert executor._take_gpu() == "1"
    assert LocalExecutor(max_parallel=2)._take_gpu() is None


# --- TensorBoard HParams -----------------------------------------------------------------------------------------


def test_hparams_experiment_and_sessions_read_back(tmp_path):
    from tensorboard.plugins.hparams import metadata
    values = {"batch_size-16_seed-0": {"batch_size": 16, "seed": 0, "lr_boundaries": (1.0, 2.0)},
              "batch_size-32_seed-0": {"batch_size": 32, "seed": 0, "lr_boundaries": (1.0, 2.0)}}
    hparams.write_experiment(tmp_path, values, [*hparams.TRAINER_METRICS, *hparams.evaluate_metrics(["x/y"])])
    hparams.write_experiment(tmp_path, values)  # Rewritten, not added to.
    [experiment_value] = plugin_values(read_events(tmp_path), metadata.EXPERIMENT_TAG)
    experiment = metadata.parse_experiment_plugin_data(experiment_value.metadata.plugin_data.content)
    domains = {h.name: [getattr(v, v.WhichOneof("kind")) for v in h.domain_discrete.values]
               for h in experiment.hparam_infos}
    assert domains == {"batch_size": [16, 32], "seed": [0], "lr_boundaries": ["1.0,2.0"]}
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == \
        [(group, tag) for group, tag, _ in hparams.TRAINER_METRICS]
    for name, point_values in values.items():
        hparams.write_session(tmp_path / name / "tensorboard", name, point_values)
        hparams.write_session(tmp_path / name / "tensorboard", name, point_values)  # Once per run.
        events = read_events(tmp_path / name / "tensorboard")
        [session_value] = plugin_values(events, metadata.SESSION_START_INFO_TAG)
        session = metadata.parse_session_start_info_plugin_data(session_value.metadata.plugin_data.content)
        assert session.group_name == name
        assert session.hparams["batch_size"].number_value == point_values["batch_size"]
        assert session.hparams["lr_boundaries"].string_value == "1.0,2.0"


# --- Sweeps run as a user would (the fault-injection test, killed and rerun: test_sweep_faults.py) --------------

COMPARED = ("train_loss", "test_loss", "test_accuracy", "last_epoch_train_loss")


# --- How points start: preloaded (forked from a process with TensorFlow imported) or fresh ---------------------

def one_point_sweep(sweep_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tfregimes.sweep", "--flagfile=flags/smoke.cfg", "--verbose=0", "--epochs=2",
            "--metrics=sharpness", "--seeds=0", f"--sweep_dir={sweep_dir}", *extra]


@pytest.mark.slow(25)
def test_a_preloaded_point_trains_and_evaluates_exactly_as_a_fresh_one(tmp_path):
    results = {}
    for start in ("fresh", "preloaded"):
        sweep_dir = tmp_path / start
        # The sweep itself forked from the test's preload server; its point starts as the flag says.
        completed = run_cli(*one_point_sweep(sweep_dir, f"--point_start={start}")[2:], env=sweep_env(), timeout=600)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        (point,) = points_of(sweep_dir).values()
        run_dir = sweep_dir / point["run_dir"]
        log = (sweep_dir / point["log"]).read_text()
        assert "Run finished" in log and "sharpness full_eps1e-3" in log  # Both processes' output reached the log.
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        results[start] = ({key: json.loads((run_dir / "metrics.json").read_text())[key] for key in COMPARED},
                          {name: entry["value"] for name, entry in evaluation.items() if name.startswith("sharpness/")})
    assert results["preloaded"] == results["fresh"]
    assert all(math.isfinite(v) for part in results["fresh"] for v in part.values())


@pytest.mark.slow(15)
def test_a_preloaded_point_dies_with_the_sweep_even_when_only_the_sweep_is_killed(tmp_path):
    """SIGKILL to the sweep alone (not its process group): the training forked from the preload server must not
    outlive it; its run directory's lock (held while it runs) comes free."""
    sweep_dir = tmp_path / "sweep"
    # --checkpoint_every_secs=0: progress.json after the first epoch, the sign below that training is under way.
    process = subprocess.Popen(one_point_sweep(sweep_dir, "--epochs=2000", "--point_start=preloaded",
                                                "--checkpoint_every_secs=0"), cwd=REPO,
                               env=sweep_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        run_dir = sweep_dir / "seed-0"
        deadline = time.monotonic() + 300
        while not (run_dir / "progress.json").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (run_dir / "progress.json").exists() and process.poll() is None, "training never got under way"
        with open(run_dir / ".lock") as lock:
            with pytest.raises(BlockingIOError):  # The training holds it.
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            deadline = time.monotonic() + 30
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, "the training outlived the killed sweep"
                    time.sleep(0.1)
        assert not (run_dir / "metrics.json").exists()  # It was stopped, not finished.
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_preload_server_defines_no_flag_so_each_cli_keeps_exactly_its_own():
    script = ("from absl import flags\nimport tensorflow\nbefore = set(flags.FLAGS)\n"
              "import tfregimes.sweep.preload\nprint(sorted(set(flags.FLAGS) - before))")
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=sweep_env(), capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
