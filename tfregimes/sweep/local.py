"""`--executor=local`: a bounded pool of subprocesses on this machine.

At most `max_parallel` points run at once, each in its own `tfregimes.train` (and `tfregimes.evaluate`) process;
with GPUs listed, each point sees one of them through CUDA_VISIBLE_DEVICES, the least busy one (round-robin when
every point takes as long).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from typing import Sequence

from tfregimes.sweep.point import CHILDREN, PointJob, run_point


class LocalExecutor:
    def __init__(self, max_parallel: int = 1, gpus: Sequence[str] = (), tick_seconds: float = 10.0):
        if max_parallel < 1:
            raise ValueError(f"--max_parallel must be at least 1, not {max_parallel}")
        self.max_parallel = max_parallel
        self.gpus = list(gpus)
        self.tick_seconds = tick_seconds
        self._lock = threading.Lock()
        self._gpu_load = {gpu: 0 for gpu in self.gpus}
        self._stopping = False

    def _take_gpu(self) -> str | None:
        with self._lock:
            if not self.gpus:
                return None
            gpu = min(self.gpus, key=lambda g: (self._gpu_load[g], self.gpus.index(g)))
            self._gpu_load[gpu] += 1
            return gpu

    def _release_gpu(self, gpu: str | None) -> None:
        if gpu is not None:
            with self._lock:
                self._gpu_load[gpu] -= 1

    def _run_one(self, job: PointJob, events) -> None:
        if self._stopping:
            return
        gpu = self._take_gpu()
        if gpu is not None:
            job = dataclasses.replace(job, env={**job.env, "CUDA_VISIBLE_DEVICES": gpu})
        events.started(job.name, gpu=gpu)
        try:
            outcome = run_point(job)
        except OSError as error:  # e.g. the log cannot be written: this point fails, the others go on.
            outcome = {"state": "failed", "error": f"{type(error).__name__}: {error}", "wall_seconds": None}
        finally:
            self._release_gpu(gpu)
        if not self._stopping:  # An interrupted point stays `running`; the next run resumes it.
            events.finished(job.name, outcome)

    def run(self, jobs: Sequence[PointJob], events) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(self.max_parallel, thread_name_prefix="sweep-point")
        futures = [pool.submit(self._run_one, job, events) for job in jobs]
        try:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=self.tick_seconds)
                for future in done:
                    future.result()
                events.tick()
        except BaseException:
            self._stopping = True
            for future in futures:
                future.cancel()
            CHILDREN.terminate_all()
            raise
        finally:
            pool.shutdown(wait=True)
