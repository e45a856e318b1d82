"""Executor registry: `--executor=NAME` -> a constructor taking the CLI's executor options.

An executor runs `PointJob`s and reports to `events`: `started(name, gpu=None)`, `finished(name, outcome)` with
run_point's outcome, and `tick()` now and then (for the progress line).
"""

from __future__ import annotations

from tfregimes.registry import Registry
from tfregimes.sweep.local import LocalExecutor
from tfregimes.sweep.ray_executor import RayExecutor

EXECUTORS: Registry = Registry("executor")


@EXECUTORS.register("local")
def _local(*, max_parallel: int = 1, gpus=(), tick_seconds: float = 10.0):
    return LocalExecutor(max_parallel=max_parallel, gpus=gpus, tick_seconds=tick_seconds)


@EXECUTORS.register("ray")
def _ray(*, ray_address: str = "auto", cpus_per_run: float = 1.0, gpus_per_run: float = 0.0, retries: int = 3,
         tick_seconds: float = 10.0):
    return RayExecutor(address=ray_address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                       retries=retries, tick_seconds=tick_seconds)


def make_executor(name: str, **options):
    return EXECUTORS.get(name)(**options)
