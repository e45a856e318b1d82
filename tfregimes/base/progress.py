"""Progress of long work, one mechanism for all of it: sharpness (per L-BFGS-B iteration), the Fisher metrics (per
subset), the Hessian metrics (per power iteration or probe), interpolation (per point) and sweeps (per point).

A `Task` is one such loop. On a terminal each step advances a tqdm bar (with its rate and time left); anywhere else
(a log file, a pipe) each step prints one plain line, without ANSI codes or carriage returns, so that a log holds
one readable line per step:

    sharpness full_eps1e-3: iteration 3/10, f=0.1234

Library functions take `progress: Progress | None`, None by default: then `task` returns a task that does nothing,
so a step costs one method call (the steps it counts take from milliseconds to minutes).
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Task:
    """`total` steps of `unit` under `label`; `step()` after each, `close()` (or a `with` block) at the end."""

    def __init__(self, stream: TextIO, label: str, total: int | None, unit: str, *, bar: bool, done: int = 0):
        self.stream, self.label, self.total, self.unit = stream, label, total, unit
        self.done = done
        self._bar = tqdm(total=total, initial=done, desc=label, unit=unit, file=stream, dynamic_ncols=True) \
            if bar else None

    def line(self, values: dict) -> str:
        """The plain line of the step just done: "label: unit done/total, name=value, ..."."""
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        return f"{self.label}: {self.unit} {count}" + "".join(f", {k}={_number(v)}" for k, v in values.items())

    def step(self, line: str | None = None, **values) -> None:
        """One step done; `values` (e.g. the current loss) are shown with it. `line` replaces the plain line."""
        self.done += 1
        if self._bar is not None:
            if values:
                self._bar.set_postfix_str(", ".join(f"{k}={_number(v)}" for k, v in values.items()), refresh=False)
            self._bar.update(1)
        else:
            print(line or self.line(values), file=self.stream, flush=True)

    def note(self, line: str) -> None:
        """News between steps: the bar's postfix on a terminal, a plain line elsewhere."""
        if self._bar is not None:
            self._bar.set_postfix_str(line)
        else:
            print(line, file=self.stream, flush=True)

    def write(self, text: str) -> None:
        """Text for the reader (e.g. an error), printed above the bar rather than through it."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(Task):
    """The task of `progress=None`: every call returns at once."""

    def __init__(self):
        self._bar = None

    def step(self, line: str | None = None, **values) -> None:
        pass

    def note(self, line: str) -> None:
        pass

    def write(self, text: str) -> None:
        pass


SILENT = _Silent()


class Progress:
    """Where progress goes: `stream` (None: sys.stderr when a task starts), as a bar when `bar` is True, as lines
    when False, and by default as a bar exactly when the stream is a terminal."""

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None):
        self.stream = stream
        self.bar = bar

    def task(self, label: str, total: int | None, unit: str = "step", *, done: int = 0) -> Task:
        stream = self.stream or sys.stderr
        return Task(stream, label, total, unit, bar=is_terminal(stream) if self.bar is None else self.bar, done=done)


def task(progress: Progress | None, label: str, total: int | None, unit: str = "step") -> Task:
    """`progress.task(...)`, or the silent task when `progress` is None (library callers that want no output)."""
    return SILENT if progress is None else progress.task(label, total, unit)
