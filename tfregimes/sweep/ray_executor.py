"""`--executor=ray`: the points as Ray tasks on an existing cluster (`ray start`, or a Slurm allocation).

Tasks rather than Ray Tune trials: a point is already a resumable run directory made by its own subprocess, and
the sweep directory already records the state of every point; Tune would add a second experiment state and trial
directories beside them without adding anything a grid needs. A task that is lost with its worker or node is
retried (`retries`) and its training resumes from the last checkpoint, so the sweep directory must be on storage
every node sees at the same path.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from tfregimes.sweep.point import PointJob, run_point

INSTALL_LINE = 'pip install -e ".[ray]"'


class RayUnavailableError(RuntimeError):
    pass


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(f"--executor=ray needs Ray: {INSTALL_LINE}") from None
    return ray


class RayExecutor:
    def __init__(self, address: str = "auto", cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 retries: int = 3, tick_seconds: float = 10.0):
        self.ray = import_ray()  # Fails before anything starts when Ray is missing.
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.retries = retries
        self.tick_seconds = tick_seconds

    def run(self, jobs: Sequence[PointJob], events) -> None:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        # retry_exceptions=False: a point whose training fails returns a failed outcome; only a lost worker
        # (a system failure) is retried.
        task = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.retries,
                          retry_exceptions=False)(run_point)
        submitted = time.time()
        refs = {task.remote(job): job for job in jobs}
        started: set[str] = set()
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=self.tick_seconds)
                for ref in ready:
                    job = refs.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as error:  # Lost more often than `retries`.
                        outcome = {"state": "failed", "error": f"Ray: {error}"[-2000:], "wall_seconds": None}
                    if job.name not in started:
                        events.started(job.name)
                    started.add(job.name)
                    events.finished(job.name, outcome)
                for job in refs.values():
                    # The cluster does not say when a queued task starts; its log, on shared storage, does.
                    if job.name not in started and _modified_since(job.log, submitted):
                        started.add(job.name)
                        events.started(job.name)
                events.tick()
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise


def _modified_since(path: str, since: float) -> bool:
    try:
        return os.path.getmtime(path) >= since
    except OSError:
        return False
