"""Reading what runs and sweeps wrote: one `RunRecord` per run directory, nothing recomputed.

A run directory (docs/reliability.md; names in `tfregimes.base.run_files`) holds flags.cfg, metrics.json,
history.csv, diagnostics/ and, after `python -m tfregimes.evaluate --output=RUN/evaluation.json`, an evaluation JSON.
A sweep directory holds `sweep.json` (spec, command, points with run_dir, overrides, state, evaluation) and one run
directory per point. A run's state is `tfregimes.base.run_files.run_state`'s: a run whose files cannot be read is a
record too (state corrupt, and why), never dropped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tfregimes.base.run_dir import RunDirectory, parse_number
from tfregimes.base.run_files import (
    EVALUATION_FILE,
    FLAGS_FILE,
    RUN_JSON_FILES,
    SWEEP_FILE,
    is_run_dir,
    read_flagfile,
    run_state,
)
from tfregimes.config.run_config import RunConfig, format_flag_value


@dataclasses.dataclass
class RunRecord:
    """One run as its files describe it. `state`: `tfregimes.base.run_files.run_state` (done, diverged, corrupt,
    running, failed, pending), with its `reason`."""

    run_dir: Path
    name: str
    state: str
    flags: dict[str, str]  # flags.cfg, values as written
    command: str  # how the run was started ("# Started as:" in flags.cfg), "" if unknown
    metrics: dict[str, Any]  # metrics.json
    evaluation: dict[str, Any] | None  # the evaluate JSON
    evaluation_path: Path | None
    sweep_dir: Path | None = None
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)  # a sweep point's varied flags
    reason: str = ""  # why the run is not done: where it diverged, which file is unreadable, the error, ...

    @property
    def diverged(self) -> bool:
        return self.state == "diverged"

    def history(self) -> pd.DataFrame:
        """history.csv (one row per epoch; empty without the file)."""
        path = RunDirectory(self.run_dir).history_path
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    def diagnostics_path(self, name: str) -> Path:
        return RunDirectory(self.run_dir).diagnostics_dir / name


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def is_evaluation(data: Any) -> bool:
    """An evaluate --output JSON: it names the split it measured and how many examples."""
    return isinstance(data, dict) and "split" in data and "examples" in data


def find_evaluation(run_dir: Path) -> Path | None:
    """RUN/evaluation.json, else the one other evaluate JSON in the run directory (sorted first if several)."""
    if (run_dir / EVALUATION_FILE).exists():
        return run_dir / EVALUATION_FILE
    for path in sorted(run_dir.glob("*.json")):
        if path.name not in RUN_JSON_FILES and is_evaluation(_read_json(path)):
            return path
    return None


def read_run(run_dir: str | os.PathLike, *, name: str | None = None, sweep_point: dict | None = None,
             sweep_dir: Path | None = None) -> RunRecord:
    run_dir = Path(run_dir)
    point = sweep_point or {}
    evaluation_path = None
    if point.get("evaluation"):
        evaluation_path = sweep_dir / point["evaluation"]
    elif not point:
        evaluation_path = find_evaluation(run_dir)
    state = run_state(run_dir, evaluation=evaluation_path, recorded=point)
    status, reason = state.state, state.reason
    flags, command = {}, ""
    if (run_dir / FLAGS_FILE).exists():
        try:
            flagfile = read_flagfile(run_dir / FLAGS_FILE)
            flags, command = flagfile.values, flagfile.command
        except (OSError, UnicodeDecodeError) as error:
            status, reason = "corrupt", f"{FLAGS_FILE}: cannot be read: {error}"
    evaluation = (_read_json(evaluation_path) if status != "corrupt" and evaluation_path and evaluation_path.exists()
                  else None)
    return RunRecord(run_dir=run_dir, name=name or run_dir.name, state=status, flags=flags, command=command,
                     metrics=state.metrics if status != "corrupt" else {}, evaluation=evaluation,
                     evaluation_path=evaluation_path if evaluation is not None else None,
                     sweep_dir=sweep_dir, overrides={k: str(v) for k, v in point.get("overrides", {}).items()},
                     reason=reason)


def read_sweep(sweep_dir: Path) -> tuple[dict[str, Any], list[RunRecord]]:
    """(sweep.json, a record per point, in the file's order)."""
    sweep = _read_json(sweep_dir / SWEEP_FILE)
    if sweep is None:
        raise ValueError(f"{sweep_dir / SWEEP_FILE}: cannot read it as JSON")
    records = [read_run(sweep_dir / point["run_dir"], name=point.get("name"), sweep_point=point,
                        sweep_dir=sweep_dir) for point in sweep.get("points", [])]
    return sweep, records


def load_runs(paths, skipped: list[Path] | None = None) -> tuple[list[RunRecord], list[dict[str, Any]]]:
    """(every run under `paths`, the sweep.json of each sweep among them). A path is a sweep directory (it holds
    sweep.json), a run directory (it holds flags.cfg or metrics.json), or a folder of run directories. A directory
    with no run in it (e.g. only the .lock of a start that failed) is appended to `skipped`, if given."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    records, sweeps = [], []
    for path in paths:
        if (path / SWEEP_FILE).exists():
            sweep, sweep_records = read_sweep(path)
            sweeps.append({**sweep, "sweep_dir": str(path)})
            records.extend(sweep_records)
        elif is_run_dir(path):
            records.append(read_run(path))
        elif path.is_dir():
            children = sorted(p for p in path.iterdir() if is_run_dir(p))
            records.extend(read_run(child) for child in children)
            if not children and skipped is not None:
                skipped.append(path)
        else:
            raise ValueError(f"{path}: not a run directory, a sweep directory ({SWEEP_FILE}) or a folder of run "
                             f"directories: {'a file' if path.exists() else 'there is no such directory'}")
    if not records:
        raise ValueError(f"no runs found under {', '.join(map(str, paths))} (a run directory holds {FLAGS_FILE})")
    _name_uniquely(records)
    return records, sweeps


def _name_uniquely(records: list[RunRecord]) -> None:
    """Runs from different sweeps may share a point name: those are named by their relative folder."""
    names = [r.name for r in records]
    for record in records:
        if names.count(record.name) > 1:
            record.name = f"{record.run_dir.parent.name}/{record.run_dir.name}"


def varied_flags(records: list[RunRecord]) -> list[str]:
    """The flags some sweep varies (its points' overrides) and the flags.cfg entries that differ across the
    runs, in flags.cfg order (overrides first for flags a run has not written yet)."""
    names: list[str] = []
    for record in records:
        names.extend(n for n in record.overrides if n not in names)
    written = [r.flags for r in records if r.flags]
    for name in (written[0] if written else {}):
        if name not in names and len({flags.get(name) for flags in written}) > 1:
            names.append(name)
    order = list(written[0]) if written else []
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


def flag_value(record: RunRecord, name: str) -> str | None:
    return record.flags.get(name, record.overrides.get(name))


def parse_value(text: str | None) -> Any:
    """A flag value as a number where it is one, so that axes sort numerically."""
    return None if text is None else parse_number(text)


def flags_differing_from_defaults(flags: dict[str, str]) -> dict[str, tuple[str, str]]:
    """{flag: (value, default)} for the flags.cfg entries whose value is not the training default."""
    defaults = RunConfig()  # The one place the defaults live.
    changed = {}
    for name, value in flags.items():
        if hasattr(defaults, name):
            default = format_flag_value(getattr(defaults, name))
            if _normalized(value) != _normalized(default):
                changed[name] = (value, default)
    return changed


def _normalized(text: str) -> Any:
    parts = [parse_value(part) for part in text.split(",")] if text else []
    return [float(p) if isinstance(p, (int, float)) else p for p in parts]


def finite(value: Any) -> float:
    """A number from a JSON or CSV cell; NaN for null, text or infinities."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
