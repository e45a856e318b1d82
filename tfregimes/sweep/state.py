"""SWEEP/sweep.json: the spec, the command and every point's state, rewritten atomically after each change.

Contract (read by tfregimes.results and by people):
  spec     the resolved spec (SweepSpec.to_json); a rerun on the same directory must give the same one
  command  the argv of the last invocation
  points   one object per point: name, run_dir (relative to the sweep directory), overrides (flag -> value of
           the flags this point varies, seed included), state (pending|running|done|diverged|failed), log
           (relative path), error (last log lines when failed, else null), evaluation (relative path of the
           evaluate JSON, or null), and attempts, wall_seconds, started, ended
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfregimes.base.run_files import FINISHED, SWEEP_FILE, read_json, write_json
from tfregimes.sweep.spec import Point, SweepSpecError

# A point as the sweep saw it last; tfregimes.base.run_files.run_state reads what its files say now.
STATES = ("pending", "running", "done", "diverged", "failed")


def spec_differences(recorded: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """One line per key whose value differs, e.g. `grid.batch_size: recorded ['32', '64'], given ['32']`."""
    lines = []
    for key in sorted(set(recorded) | set(given)):
        old, new = recorded.get(key), given.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            lines.extend(f"{key}.{line}" for line in spec_differences(old, new))
        elif old != new:
            lines.append(f"{key}: recorded {old!r}, given {new!r}")
    return lines


class SweepState:
    """The points of one sweep directory and their states; thread-safe, saved on every change."""

    def __init__(self, sweep_dir: str | Path, spec: dict[str, Any], command: Sequence[str],
                 points: Sequence[Point]):
        self.sweep_dir = Path(sweep_dir)
        self.path = self.sweep_dir / SWEEP_FILE
        self._lock = threading.Lock()
        recorded = read_json(self.path) if self.path.exists() else None
        if recorded is not None:
            differences = spec_differences(recorded["spec"], spec)
            if differences:
                raise SweepSpecError(
                    f"{self.path} was started with another spec:\n  " + "\n  ".join(differences)
                    + "\nRerun it with its own command (sweep.json \"command\") or use another --sweep_dir.")
        old = {p["name"]: p for p in recorded["points"]} if recorded else {}
        self.data = {"spec": spec, "command": list(command),
                     "points": [old.get(point.name) or _new_record(point) for point in points]}
        self.save()

    @property
    def points(self) -> list[dict[str, Any]]:
        return self.data["points"]

    def point(self, name: str) -> dict[str, Any]:
        return next(p for p in self.points if p["name"] == name)

    def to_run(self) -> list[dict[str, Any]]:
        """Points not finished: pending, interrupted (still `running` from a killed sweep) and failed ones."""
        return [p for p in self.points if p["state"] not in FINISHED]

    def update(self, name: str, **changes: Any) -> None:
        with self._lock:
            record = self.point(name)
            if changes.get("state") == "running":
                record["attempts"] = record.get("attempts", 0) + 1
                changes.setdefault("started", _now())
            if changes.get("state") in (*FINISHED, "failed"):
                changes.setdefault("ended", _now())
            record.update(changes)
            self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    def counts(self) -> dict[str, int]:
        return {state: sum(p["state"] == state for p in self.points) for state in STATES}


def _new_record(point: Point) -> dict[str, Any]:
    return {"name": point.name, "run_dir": point.name, "overrides": dict(point.overrides), "state": "pending",
            "log": f"{point.name}/sweep.log", "error": None, "evaluation": None, "attempts": 0,
            "wall_seconds": None, "started": None, "ended": None}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
