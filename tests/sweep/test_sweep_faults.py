"""Fault injection (issue 24 item 10): a local sweep of 6 points hit by a seeded schedule of SIGKILLs, of single
point trainers (the sweep goes on and records the point failed) and of the whole sweep (then started again), then
rerun until it exits 0, ends exactly as an uninterrupted sweep: every point done and trained to completion once,
metrics equal to the reference's, finished points never run again, each resume from the checkpoint the kill left."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import REPO, plugin_values, points_of, read_events, sweep_env

from tfregimes.sweep import hparams

SWEEP_ARGS = ["--flagfile=flags/smoke.cfg", "--verbose=0", "--epochs=3", "--lr_boundaries=2",
              "--grid=batch_size=16,32,64", "--seeds=0,1", "--max_parallel=2", "--threads_per_run=1",
              "--checkpoint_every_secs=0"]  # A checkpoint every epoch, so that kills land between them.
POINTS = 6
COMPARED = ("train_loss", "test_loss", "test_accuracy", "last_epoch_train_loss")
KILL_SEED = 4  # The schedule: which kinds of kill in which order, and which running point each one hits.
KILLS = 3  # Seed 4: two points, then the sweep (2 sweep starts; the issue asks for 3 kills or more).


def sweep_command(sweep_dir: Path) -> list[str]:
    return [sys.executable, "-m", "tfregimes.sweep", *SWEEP_ARGS, f"--sweep_dir={sweep_dir}"]


def read_json(path: Path):
    return json.loads(path.read_text())


def training(sweep: psutil.Process, sweep_dir: Path) -> dict[str, psutil.Process]:
    """The sweep's point trainers now between a checkpoint and their metrics.json: its descendants (forked from the
    preload server) holding RUN/.lock open, whose RUN has progress.json and no metrics.json."""
    found = {}
    try:
        descendants = sweep.children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for process in descendants:
        try:
            held = [Path(f.path) for f in process.open_files()]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for path in held:
            run = path.parent
            if path.name == ".lock" and run.parent == sweep_dir and (run / "progress.json").exists() \
                    and not (run / "metrics.json").exists():
                found[run.name] = process
    return found


def checkpoints_left(sweep_dir: Path, names) -> dict[str, int]:
    """epochs_done of the checkpoint each unfinished point among `names` has now (its processes dead)."""
    return {name: read_json(sweep_dir / name / "progress.json")["epochs_done"] for name in names
            if (sweep_dir / name / "progress.json").exists() and not (sweep_dir / name / "metrics.json").exists()}


class FaultedSweep:
    """Runs the sweep command on one directory again and again, SIGKILLing as `schedule` says while it trains, and
    records what every check at the end compares with."""

    def __init__(self, sweep_dir: Path, schedule: list[str], rng: random.Random, deadline: float):
        self.sweep_dir, self.schedule, self.rng, self.deadline = sweep_dir, schedule, rng, deadline
        self.kills: list[tuple[str, str | None]] = []  # (kind, the point whose trainer was killed)
        self.left: dict[str, int] = {}  # point -> epochs_done of the checkpoint the last kill interrupting it left
        self.done_attempts: dict[str, int] = {}  # point -> its attempts when sweep.json first said done
        self.finished: dict[str, int] = {}  # point -> metrics.json's mtime when first seen (written once, atomically)

    def note_finished(self) -> None:
        for name, point in points_of(self.sweep_dir).items():
            if point["state"] == "done":
                self.done_attempts.setdefault(name, point["attempts"])
            metrics = self.sweep_dir / name / "metrics.json"
            if name not in self.finished and metrics.exists():
                self.finished[name] = metrics.stat().st_mtime_ns

    def kill_point(self, name: str, trainer: psutil.Process) -> None:
        """One trainer: the sweep records its point failed and goes on with the others."""
        trainer.kill()
        trainer.wait(30)
        self.left.update(checkpoints_left(self.sweep_dir, [name]))
        self.kills.append(("point", name))

    def kill_sweep(self, process: subprocess.Popen, sweep: psutil.Process) -> None:
        """The sweep and everything it started (its process group); the next run starts it again."""
        processes = [sweep, *sweep.children(recursive=True)]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _, alive = psutil.wait_procs(processes, timeout=30)
        assert not alive, f"outlived the killed sweep: {alive}"
        self.left.update(checkpoints_left(self.sweep_dir, points_of(self.sweep_dir)))
        self.kills.append(("sweep", None))

    def run(self, out: Path) -> tuple[int, bool]:
        """One invocation, with the kills of the schedule due while it trains: (exit status, killed as a whole)."""
        with open(out, "w") as log:
            process = subprocess.Popen(sweep_command(self.sweep_dir), cwd=REPO, env=sweep_env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            sweep = psutil.Process(process.pid)
            not_before = None  # The next kill waits a random 0-1 s after training is first seen, to vary its epoch.
            while len(self.kills) < len(self.schedule) and process.poll() is None:
                assert time.monotonic() < self.deadline, f"the sweep did not end in time; kills {self.kills}"
                self.note_finished()
                # Kill k waits for k points done, so that kills land all through the sweep and reruns skip points.
                done = sum(p["state"] == "done" for p in points_of(self.sweep_dir).values())
                candidates = training(sweep, self.sweep_dir) if done >= len(self.kills) else {}
                if candidates and not_before is None:
                    not_before = time.monotonic() + self.rng.uniform(0.0, 1.0)
                if not candidates or time.monotonic() < not_before:
                    time.sleep(0.05)
                elif self.schedule[len(self.kills)] == "point":
                    name = self.rng.choice(sorted(candidates))
                    self.kill_point(name, candidates[name])
                    not_before = None
                else:
                    self.kill_sweep(process, sweep)
                    return process.returncode, True
            return process.wait(max(1.0, self.deadline - time.monotonic())), False
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.note_finished()


@pytest.mark.slow(90)  # Alone (-n 0), 2 cores at load 9: 126 s; 75 CPU s with its processes (4 kills: 99 CPU s).
def test_a_sweep_hit_by_random_sigkills_of_points_and_of_itself_ends_as_an_uninterrupted_one(tmp_path):
    # The uninterrupted reference runs beside the faulted sweep (its results do not depend on the timing).
    with open(tmp_path / "reference.out", "w") as log:
        reference = subprocess.Popen(sweep_command(tmp_path / "reference"), cwd=REPO, env=sweep_env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
    rng = random.Random(KILL_SEED)
    schedule = ["point", "sweep", *(rng.choice(("point", "sweep")) for _ in range(KILLS - 2))]
    rng.shuffle(schedule)
    sweep_dir = (tmp_path / "faulted").resolve()
    faulted = FaultedSweep(sweep_dir, schedule, rng, deadline=time.monotonic() + 600)  # The test never hangs.
    try:
        skipped = []  # How many done points each rerun found.
        for attempt in range(KILLS + 2):
            already = sum(p["state"] == "done" for p in points_of(sweep_dir).values())
            skipped.append(already)
            kills_before = len(faulted.kills)
            code, killed = faulted.run(tmp_path / f"run-{attempt}.out")
            text = (tmp_path / f"run-{attempt}.out").read_text()
            assert f"{POINTS} points in {sweep_dir}, {already} already finished, {POINTS - already} to run" in text
            if killed:
                continue
            if code == 0:
                break
            # It finished the other points and exits 1: exactly the points whose trainer was killed failed.
            assert code == 1, f"run {attempt} exited with {code}:\n{text}"
            failed = {name for name, point in points_of(sweep_dir).items() if point["state"] == "failed"}
            assert failed == {name for kind, name in faulted.kills[kills_before:] if kind == "point"}, text
        print(f"\nkills: {faulted.kills}; checkpoints they left: {faulted.left}; done at each start: {skipped}")
        assert code == 0 and len(faulted.kills) == KILLS, (faulted.kills, text)
        assert {kind for kind, _ in faulted.kills} == {"point", "sweep"}
        assert max(skipped) > 0, skipped  # A rerun found done points (and, checked below, left them alone).
        assert reference.wait(max(1.0, faulted.deadline - time.monotonic())) == 0
    finally:
        if reference.poll() is None:
            os.killpg(reference.pid, signal.SIGKILL)
            reference.wait()
    reference_out = (tmp_path / "reference.out").read_text()
    assert f"{POINTS}/{POINTS} finished ({POINTS} done, 0 diverged, 0 failed)" in reference_out

    after = points_of(sweep_dir)
    assert {p["state"] for p in after.values()} == {"done"} and len(after) == POINTS
    for name, point in after.items():
        run_dir = sweep_dir / name
        metrics = read_json(run_dir / "metrics.json")
        expected = read_json(tmp_path / "reference" / name / "metrics.json")
        assert all(math.isfinite(metrics[key]) for key in COMPARED)
        assert {key: metrics[key] for key in COMPARED} == {key: expected[key] for key in COMPARED}, name
        # Trained to completion once: one metrics.json, never rewritten, and one finished training in the log.
        assert (run_dir / "metrics.json").stat().st_mtime_ns == faulted.finished[name], name
        assert (sweep_dir / point["log"]).read_text().count("Run finished") == 1, name
        # A point done before a kill is not started again.
        assert point["attempts"] == faulted.done_attempts[name], name
        # Training went on from the checkpoint the last kill left, not from scratch (0: killed before any).
        assert metrics["resumed_from_epoch"] == faulted.left.get(name, 0), name
    assert any(faulted.left.values()), f"no kill interrupted a point after a checkpoint: {faulted.left}"
    # The HParams table: each declared trainer metric is written where the plugin looks for it.
    from tensorboard.plugins.hparams import metadata
    for name in after:
        board = sweep_dir / name / "tensorboard"
        assert plugin_values(read_events(board), metadata.SESSION_START_INFO_TAG)
        for group, tag, _ in hparams.TRAINER_METRICS:
            assert plugin_values(read_events(board / group), tag), (name, group, tag)
