"""`run_sweep`: validate every point, record the sweep, run what is not finished, report.

Nothing starts before every point has passed the training CLI's own flag parsing and checks, fits its data's size
(`check_fits_data`) and the spec matches what an existing sweep.json recorded; then each unfinished point (pending,
interrupted or failed) becomes a `PointJob` for the executor, and sweep.json follows every start and end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tfregimes.base import progress as progress_lib
from tfregimes.base.run_dir import RunDirectory
from tfregimes.base.run_files import EVALUATION_FILE, FINISHED, write_atomically
from tfregimes.sweep import hparams
from tfregimes.sweep.build import sweep_command
from tfregimes.sweep.local import LocalExecutor
from tfregimes.sweep.point import PointJob, child_threads_env
from tfregimes.sweep.spec import SweepSpec, base_flagfile_text, expand, point_argv, validate_points
from tfregimes.sweep.state import SweepState
from tfregimes.training.data_fit import check_fits_data
from tfregimes.training.run_flag_rules import parse_run_config

BASE_FLAGFILE = "base.cfg"


def evaluate_argv(config, run_dir: Path, metrics: Sequence[str]) -> list[str]:
    """`tfregimes.evaluate` flags for a point: its data prepared exactly as its training saw it (dataset,
    normalization, the same fixed --train_subset drawn with its --seed)."""
    run = RunDirectory(run_dir)
    argv = [f"--model={run.export_dir}", f"--dataset={config.dataset}",
            f"--normalization={config.normalization}", f"--train_subset={config.train_subset}",
            f"--train_subset_seed={config.seed}", f"--metrics={','.join(metrics)}",
            f"--output={run.evaluation_path}", f"--tensorboard_dir={run.tensorboard_dir / 'evaluate'}"]
    if config.data_dir:
        argv.append(f"--data_dir={config.data_dir}")
    if config.download:
        argv.append("--download")
    return argv


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """The executor's events: sweep.json follows them, and progress is shown on `out` (`tfregimes.base.progress`):
    on a terminal a bar advanced by each finished point, elsewhere one line per start and end (and every
    `every_seconds` between them)."""

    def __init__(self, state: SweepState, out: TextIO, every_seconds: float = 30.0):
        self.state = state
        self.out = out
        self.every_seconds = every_seconds  # Between lines when nothing starts or ends.
        self.started_at = self._printed_at = time.monotonic()
        self.walls: list[float] = []
        self._lock = threading.Lock()
        counts = state.counts()
        self.task = progress_lib.Progress(out).task("sweep", len(state.points), "point",
                                                    done=counts["done"] + counts["diverged"])

    def started(self, name: str, gpu: str | None = None) -> None:
        self.state.update(name, state="running", error=None, **({"gpu": gpu} if gpu is not None else {}))
        self.tick(force=True)

    def finished(self, name: str, outcome: dict[str, Any]) -> None:
        record = self.state.point(name)
        evaluation = (f"{record['run_dir']}/{EVALUATION_FILE}"
                      if outcome["state"] == "done" and self.state.data["spec"]["metrics"] else None)
        self.state.update(name, state=outcome["state"], error=outcome.get("error"), evaluation=evaluation,
                          wall_seconds=outcome.get("wall_seconds"))
        if outcome.get("wall_seconds"):
            self.walls.append(outcome["wall_seconds"])
        if outcome["state"] == "failed":
            self.task.write(f"sweep: point {name} failed; last lines of {record['log']}:\n{outcome.get('error')}")
        with self._lock:
            self._printed_at = time.monotonic()
            if outcome["state"] in FINISHED:
                self.task.step(line=self.line())
            else:
                self.task.note(self.line())

    def line(self) -> str:
        counts = self.state.counts()
        finished = counts["done"] + counts["diverged"]
        elapsed = time.monotonic() - self.started_at
        left = counts["pending"]
        estimate = "?"
        if self.walls and (left or counts["running"]):
            mean = sum(self.walls) / len(self.walls)
            estimate = _duration(mean * (left + counts["running"]) / max(counts["running"], 1))
        return (f"sweep: {finished}/{len(self.state.points)} finished ({counts['done']} done, "
                f"{counts['diverged']} diverged, {counts['failed']} failed), {counts['running']} running, "
                f"{left} left | {_duration(elapsed)} elapsed, ~{estimate} to go")

    def tick(self, force: bool = False) -> None:
        with self._lock:
            if force or time.monotonic() - self._printed_at >= self.every_seconds:
                self._printed_at = time.monotonic()
                self.task.note(self.line())

    def close(self) -> None:
        self.task.close()


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, executor=None,
              parse: Callable[[list[str]], Any] = parse_run_config, *, command: Sequence[str] | None = None,
              threads_per_run: int = 0, evaluate_tags: Sequence[str] | None = None, cwd: str | Path = ".",
              out: TextIO = sys.stdout, preloaded: bool = True) -> dict[str, int]:
    """Runs the sweep (or resumes it: finished points are kept); returns the number of points in each state. Raises
    SweepSpecError before anything starts for a bad point or a spec that differs from the one the directory
    recorded.

    executor: default one point at a time here (`make_executor("local")`). parse: a point's training flags to its
    RunConfig, raising ValueError for a bad one (default `tfregimes.train`'s own parse and checks, on a private
    FlagValues). command: what sweep.json records (default the equivalent `python -m tfregimes.sweep` command,
    `sweep_command`). evaluate_tags: the TensorBoard HParams metric tags of the evaluation (default those of
    spec.metrics). preloaded: start each point's processes from a server with TensorFlow imported where possible
    (`tfregimes.sweep.launch`), which saves a TensorFlow start-up per process."""
    executor = executor if executor is not None else LocalExecutor()
    if command is None:
        command = sweep_command(spec, sweep_dir, executor, threads_per_run, preloaded)
    if evaluate_tags is None:
        evaluate_tags = hparams.evaluate_metric_tags(spec.metrics)
    sweep_dir = Path(sweep_dir).resolve()
    points = expand(spec)
    configs = validate_points(points, spec.base, parse, check_fits_data)  # Before anything is written.
    state = SweepState(sweep_dir, spec.to_json(), command, points)
    base_flagfile = sweep_dir / BASE_FLAGFILE
    write_atomically(base_flagfile, base_flagfile_text(spec.base))

    varied = {point.name: {flag: getattr(configs[point.name], flag) for flag in point.overrides}
              for point in points}
    metrics = list(hparams.TRAINER_METRICS) + hparams.evaluate_metrics(evaluate_tags)
    hparams.write_experiment(sweep_dir, varied, metrics)
    for point in points:
        hparams.write_session(sweep_dir / point.name / "tensorboard", point.name, varied[point.name])

    by_name = {point.name: point for point in points}
    jobs = []
    for record in state.to_run():
        run_dir = sweep_dir / record["run_dir"]
        config = configs[record["name"]]
        jobs.append(PointJob(
            name=record["name"], run_dir=str(run_dir), log=str(sweep_dir / record["log"]),
            train_argv=point_argv(str(base_flagfile), by_name[record["name"]], str(run_dir)),
            evaluate_argv=evaluate_argv(config, run_dir, spec.metrics) if spec.metrics else None,
            evaluation=str(run_dir / EVALUATION_FILE) if spec.metrics else None,
            cwd=str(Path(cwd).resolve()), env=child_threads_env(threads_per_run), preloaded=preloaded))
    for record in state.to_run():  # Interrupted (`running`) and failed points wait their turn again.
        if record["state"] != "pending":
            state.update(record["name"], state="pending")
    skipped = len(points) - len(jobs)
    print(f"sweep: {len(points)} points in {sweep_dir}, {skipped} already finished, {len(jobs)} to run",
          file=out, flush=True)
    progress = Progress(state, out)
    try:
        if jobs:
            executor.run(jobs, progress)
    finally:
        progress.close()
    counts = state.counts()
    print(f"sweep: finished in {_duration(time.monotonic() - progress.started_at)}: "
          + ", ".join(f"{counts[s]} {s}" for s in ("done", "diverged", "failed") if counts[s] or s == "done"),
          file=out, flush=True)
    return counts
