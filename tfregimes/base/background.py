"""One background thread for files that the training loop need not wait for: the training diagnostics' (TensorBoard
events, JSON lines, momentum snapshots) and the run's own records (checkpoint, history.csv, progress.json).

On short epochs (the default digits job: 22 steps, 0.2 s) writing costs as much as measuring. Work runs in the order
it was submitted; `wait()` returns when all of it is done and raises what a piece of it raised. The trainer waits
before it records an epoch as done (progress.json), so a resumed run finds every file of the epochs it skips.
`submit` and `wait` may be called from different threads (the run's records thread waits for the diagnostics').
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable


class BackgroundFiles:
    """A single worker thread running file writes in submission order."""

    def __init__(self, name: str = "diagnostics-files"):
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[concurrent.futures.Future] = []
        self._lock = threading.Lock()

    def submit(self, write: Callable[..., None], *args, **kwargs) -> None:
        with self._lock:
            # Done writes are dropped here, so the list stays short; their errors surface in `wait`, not here.
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._executor.submit(write, *args, **kwargs))

    def wait(self) -> None:
        """Returns when everything submitted so far is written (raising the first error of a write)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()
