"""A run directory's contract: the names of its files, how every file is written (atomically, all with one mode),
its flagfile's lines, and the one rule that says which state a run is in.

Layout (docs/reliability.md "What a run writes"; `tfregimes.base.run_dir.RunDirectory` holds the paths):
  flags.cfg        resolved flags; `--flagfile=RUN/flags.cfg` repeats the run ("# Started as:" names its command)
  data.json        the data's fingerprint (tfregimes.data.fingerprint): a rerun on changed data is refused
  progress.json    the last checkpoint and its epoch (written last, so it never points ahead of the files)
  history.csv      one row per completed epoch, every logged metric
  metrics.json     final metrics (written when the run ends): the run has a result
  evaluation.json  `python -m tfregimes.evaluate --output=RUN/evaluation.json` (a sweep point's evaluation)
  checkpoints/, tensorboard/, export/, diagnostics/
  .lock            held (flock) by the process writing the run; names its pid and host
A sweep directory holds sweep.json and one run directory per point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
import socket
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

FLAGS_FILE = "flags.cfg"
DATA_FILE = "data.json"
PROGRESS_FILE = "progress.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
EXPORT_DIR = "export"
DIAGNOSTICS_DIR = "diagnostics"
SWEEP_FILE = "sweep.json"
# JSON files of a run directory that are not an evaluation result.
RUN_JSON_FILES = frozenset({METRICS_FILE, PROGRESS_FILE})


# --- writing --------------------------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; every file of a run gets the mode any new file gets (e.g.
# 0644, as the checkpoints Keras writes). Read once: os.umask sets while it reads, which races with other threads.
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, fsync: bool = True) -> Iterator[IO]:
    """A file object (`mode` "w" or "wb") on a temporary file beside `path`, renamed over `path` when the block
    ends without an error (removed when it raises), so that a reader or a kill never sees a torn file. For writers
    that take a file (np.savez, csv). `fsync=False` for files rewritten every epoch."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes a new file: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for writers that take a file name (h5py): when the block ends without an
    error the file is synced, given FILE_MODE and renamed over `path` (removed when it raises)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike, data: str | bytes, *, fsync: bool = True) -> None:
    """Writes `data` (text or bytes) to a temporary file beside `path` and renames it over `path`."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as f:
        f.write(data)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers); numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: Mapping[str, Any], *, indent: int = 2, fsync: bool = True) -> None:
    write_atomically(path, json.dumps(json_safe(data), indent=indent, allow_nan=False) + "\n", fsync=fsync)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


# --- flagfiles ------------------------------------------------------------------------------------------------
STARTED_AS = "# Started as: "


@dataclasses.dataclass(frozen=True)
class Flagfile:
    values: dict[str, str]  # The `--name=value` lines, values as written (comments and blank lines skipped).
    command: str  # The "# Started as:" command, "" if none.


def parse_flagfile(text: str) -> Flagfile:
    values, command = {}, ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(STARTED_AS):
            command = line[len(STARTED_AS):]
        elif line.startswith("--"):
            name, _, value = line[2:].partition("=")
            values[name] = value
    return Flagfile(values, command)


def read_flagfile(path: str | os.PathLike) -> Flagfile:
    return parse_flagfile(Path(path).read_text())


def flagfile_text(values: Mapping[str, str], *, comments: Sequence[str] = (), command: Sequence[str] | None = None,
                  commented_out: Collection[str] = ()) -> str:
    """Flagfile text: `comments` as `#` lines, the command as "# Started as:", then one `--name=value` line per
    entry (written as a comment for the names in `commented_out`, so that repeating the file leaves them out)."""
    lines = [f"# {comment}" for comment in comments]
    if command:
        lines.append(STARTED_AS + " ".join(shlex.quote(part) for part in command))
    for name, value in values.items():
        lines.append(f"# --{name}={value}" if name in commented_out else f"--{name}={value}")
    return "\n".join(lines) + "\n"


# --- a run's state --------------------------------------------------------------------------------------------
FINISHED = ("done", "diverged")  # Results: a diverged run is one too (counted, left out of statistics).
RUN_STATES = ("done", "diverged", "corrupt", "running", "failed", "pending")


@dataclasses.dataclass(frozen=True)
class RunState:
    state: str  # One of RUN_STATES.
    reason: str = ""  # Why, for every state but done: where it diverged, which file is unreadable, ...
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # metrics.json, read to decide ({} if none)


def is_run_dir(path: str | os.PathLike) -> bool:
    """A run has started writing there (a directory with only .lock is a start that failed before that)."""
    return (Path(path) / FLAGS_FILE).is_file() or (Path(path) / METRICS_FILE).exists()


def read_object(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object in `path`, "") or (None, "FILE: why it cannot be read")."""
    try:
        data = read_json(path)
    except json.JSONDecodeError as error:
        return None, f"{path.name}: not valid JSON (truncated?): {error}"
    except (OSError, UnicodeDecodeError) as error:
        return None, f"{path.name}: cannot be read: {error}"
    if not isinstance(data, dict):
        return None, f"{path.name}: a JSON {type(data).__name__}, not an object"
    return data, ""


def writer(run_dir: str | os.PathLike) -> str | None:
    """"process PID on HOST" of a live process that holds the run's lock, else None. Read from the pid and host
    .lock names (a released lock names none; a killed process's names its dead pid), never by taking the lock,
    which would make a run that starts at that instant fail as busy. A pid on another host cannot be checked: it
    counts as live."""
    try:
        owner = json.loads((Path(run_dir) / LOCK_FILE).read_bytes() or b"{}")
        pid, host = int(owner["pid"]), str(owner.get("host", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # Alive, another user's.
    return f"process {pid} on {host or 'an unknown host'}"


def run_state(run_dir: str | os.PathLike, *, evaluation: str | os.PathLike | None = None,
              recorded: Mapping[str, Any] | None = None) -> RunState:
    """The state of the run in `run_dir`, from its files:
      corrupt   metrics.json (or `evaluation`, the evaluate JSON it should have) exists but cannot be read
      diverged  metrics.json says so (reason: where)
      done      metrics.json holds its final metrics
      running   no metrics.json, and a live process holds its lock
      failed    no metrics.json, nobody writing, and the run had started (flags.cfg): it ended early
      pending   nothing written yet
    `recorded`: what a sweep recorded for the point (sweep.json: state, error); a point it recorded as failed
    (e.g. its evaluation failed) stays failed, with its error as the reason."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS_FILE
    recorded = recorded or {}
    if metrics_path.exists():
        metrics, why = read_object(metrics_path)
        if metrics is None:
            return RunState("corrupt", why)
        if metrics.get("diverged"):
            at = metrics.get("diverged_at")
            where = (f"non-finite loss at epoch {at.get('epoch')} (1-based, as history.csv counts), batch "
                     f"{at.get('batch')}" if isinstance(at, dict) else "non-finite loss")
            return RunState("diverged", where, metrics)
        if evaluation is not None and Path(evaluation).exists():
            data, why = read_object(Path(evaluation))
            if data is None:
                return RunState("corrupt", why, metrics)
        if recorded.get("state") == "failed":
            return RunState("failed", recorded.get("error") or "the sweep recorded it as failed", metrics)
        return RunState("done", "", metrics)
    holder = writer(run_dir)
    if holder is not None:
        return RunState("running", f"being written by {holder}")
    if recorded.get("state") == "failed" and recorded.get("error"):
        return RunState("failed", recorded["error"])
    if (run_dir / FLAGS_FILE).is_file():
        progress, _ = read_object(run_dir / PROGRESS_FILE) if (run_dir / PROGRESS_FILE).exists() else (None, "")
        after = (f"after epoch {progress.get('epochs_done')} ({PROGRESS_FILE})" if progress
                 else "before completing an epoch")
        return RunState("failed", f"ended {after} without writing {METRICS_FILE}; rerun its command to resume it")
    return RunState("pending", "nothing written yet")
