"""The run directory: where a run records itself, written atomically so that a kill never leaves a torn file.

Layout:
  flags.cfg        resolved flags; `--flagfile=RUN/flags.cfg` repeats the run
  progress.json    last completed epoch and its checkpoint (written last, so it never points ahead of the files)
  history.csv      one row per completed epoch, every logged metric
  metrics.json     final metrics (written when the run ends)
  checkpoints/     epoch-NNNN.weights.h5: model and optimizer state
  tensorboard/     train/ and validation/ event files (and profiles)
  export/          SavedModel with a serving signature; model.keras beside it
  .lock            held (flock) by the process writing the run; names its pid and host

A run directory is claimed before anything is written to it: a default name by an exclusive mkdir (a suffix -2,
-3, ... when another run took the name in the same second), and every directory by an exclusive flock on .lock.
The kernel drops the lock of a process that dies, so a killed run's directory is free for its resume at once.
"""

from __future__ import annotations

import csv
import datetime
import fcntl
import hashlib
import io
import itertools
import json
import math
import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; results get the mode any new file gets (e.g. 0644, as the
# checkpoints Keras writes).
FILE_MODE = 0o666 & ~_umask()


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to a temporary file beside `path` and renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(json_safe(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


class RunDirectoryBusyError(RuntimeError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """An exclusive flock on RUN/.lock, held until `release` or the process's end."""

    def __init__(self, fd: int, took_over_from: int | None):
        self._fd = fd
        self.took_over_from = took_over_from  # pid of a dead process whose run this one continues, if any

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # A released lock names no owner; a killed process's keeps its pid.
        os.close(self._fd)
        self._fd = None


def _lock_owner(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}


class RunDirectory:
    """Paths and files of one run."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def new_default(cls, dataset: str, model: str, base: str | os.PathLike = "runs") -> RunDirectory:
        """The default name, runs/<dataset>_<model>_<timestamp>, not yet claimed (see `claim_default`)."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe_dataset = dataset.replace(":", "_").replace("/", "_")
        return cls(Path(base) / f"{safe_dataset}_{model}_{stamp}")

    @classmethod
    def claim_default(cls, dataset: str, model: str, base: str | os.PathLike = "runs") -> RunDirectory:
        """Creates a fresh default directory: mkdir is atomic, so two runs started in the same second get
        <name> and <name>-2."""
        first = cls.new_default(dataset, model, base).root
        for number in itertools.count(1):
            root = first if number == 1 else first.with_name(f"{first.name}-{number}")
            try:
                root.mkdir(parents=True, exist_ok=False)
                return cls(root)
            except FileExistsError:
                continue
        raise AssertionError("unreachable")

    def lock(self) -> RunLock:
        """Claims the directory for this process; a live holder (another process, or this one through another
        RunDirectory) makes it fail with RunDirectoryBusyError naming the holder."""
        self.create()
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(fd)
            os.close(fd)
            where = ("this machine" if owner.get("host") == socket.gethostname()
                     else f"host {owner.get('host', 'unknown')}")
            raise RunDirectoryBusyError(
                f"{self.root} is being written by process {owner.get('pid', '?')} on {where}; wait for it to end, "
                "or pass another --model_dir") from None
        previous = _lock_owner(fd).get("pid")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        return RunLock(fd, previous if previous not in (None, os.getpid()) else None)

    flags_path = property(lambda self: self.root / "flags.cfg")
    progress_path = property(lambda self: self.root / "progress.json")
    history_path = property(lambda self: self.root / "history.csv")
    metrics_path = property(lambda self: self.root / "metrics.json")
    checkpoint_dir = property(lambda self: self.root / "checkpoints")
    tensorboard_dir = property(lambda self: self.root / "tensorboard")
    export_dir = property(lambda self: self.root / "export")
    keras_model_path = property(lambda self: self.root / "export" / "model.keras")
    saved_model_dir = property(lambda self: self.root / "export" / "saved_model")

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def checkpoint_path(self, epochs_done: int) -> Path:
        return self.checkpoint_dir / f"epoch-{epochs_done:04d}.weights.h5"

    # --- progress -------------------------------------------------------------------------------------------
    def read_progress(self) -> dict[str, Any] | None:
        """The last recorded progress, or None for a run that has not completed an epoch."""
        if not self.progress_path.exists():
            return None
        return read_json(self.progress_path)

    def write_progress(self, **progress: Any) -> None:
        write_json(self.progress_path, progress)

    @staticmethod
    def resume_candidates(progress: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The checkpoints progress.json names, newest first: its own entry, then `earlier` ones (older runs'
        progress.json has none)."""
        latest = {key: value for key, value in progress.items() if key != "earlier"}
        return [latest, *progress.get("earlier", [])]

    def checkpoint_problem(self, entry: Mapping[str, Any]) -> str | None:
        """Why the checkpoint of a progress entry cannot be trusted (missing, or not the file whose checksum was
        recorded), or None."""
        path = self.checkpoint_dir / entry["checkpoint"]
        if not path.is_file():
            return f"{path.relative_to(self.root)} is missing"
        if "sha256" in entry and file_sha256(path) != entry["sha256"]:
            return f"{path.relative_to(self.root)} is damaged (its checksum differs from the one recorded)"
        return None

    # --- history --------------------------------------------------------------------------------------------
    def read_history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        with open(self.history_path, newline="") as f:
            return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def write_history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format_cell(row.get(k)) for k in columns})
        write_atomically(self.history_path, buffer.getvalue())


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_number(text: str) -> Any:
    """`text` as an int or a float where it is one, else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_cell(text: str) -> Any:
    return None if text == "" else parse_number(text)
