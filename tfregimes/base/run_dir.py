"""The run directory: where a run records itself, written atomically so that a kill never leaves a torn file.

Layout:
  flags.cfg        resolved flags; `--flagfile=RUN/flags.cfg` repeats the run
  progress.json    last completed epoch and its checkpoint (written last, so it never points ahead of the files)
  history.csv      one row per completed epoch, every logged metric
  metrics.json     final metrics (written when the run ends)
  checkpoints/     epoch-NNNN.weights.h5: model and optimizer state
  tensorboard/     train/ and validation/ event files (and profiles)
  export/          SavedModel with a serving signature; model.keras beside it
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to a temporary file beside `path` and renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


class RunDirectory:
    """Paths and files of one run."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def new_default(cls, dataset: str, model: str, base: str | os.PathLike = "runs") -> RunDirectory:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe_dataset = dataset.replace(":", "_").replace("/", "_")
        return cls(Path(base) / f"{safe_dataset}_{model}_{stamp}")

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


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
