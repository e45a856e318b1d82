"""The run directory: its paths (names in `tfregimes.base.run_files`, which writes every file atomically), its
progress and history, and the lock of the process that writes it.

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
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfregimes.base import run_files
from tfregimes.base.run_files import read_json, write_atomically, write_json


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        fd = os.open(self.root / run_files.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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

    flags_path = property(lambda self: self.root / run_files.FLAGS_FILE)
    data_path = property(lambda self: self.root / run_files.DATA_FILE)
    progress_path = property(lambda self: self.root / run_files.PROGRESS_FILE)
    history_path = property(lambda self: self.root / run_files.HISTORY_FILE)
    metrics_path = property(lambda self: self.root / run_files.METRICS_FILE)
    evaluation_path = property(lambda self: self.root / run_files.EVALUATION_FILE)
    checkpoint_dir = property(lambda self: self.root / run_files.CHECKPOINT_DIR)
    tensorboard_dir = property(lambda self: self.root / run_files.TENSORBOARD_DIR)
    export_dir = property(lambda self: self.root / run_files.EXPORT_DIR)
    diagnostics_dir = property(lambda self: self.root / run_files.DIAGNOSTICS_DIR)
    keras_model_path = property(lambda self: self.root / run_files.EXPORT_DIR / "model.keras")
    saved_model_dir = property(lambda self: self.root / run_files.EXPORT_DIR / "saved_model")

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
