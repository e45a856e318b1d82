"""How every report figure looks: Agg backend, an opaque white background with dark text (readable in a dark or a
light viewer, where a transparent PNG would put black text on black), and markers for the run's events."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Files only; never a window.

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

RC = {"figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
      "text.color": "black", "axes.labelcolor": "black", "axes.edgecolor": "black", "xtick.color": "black",
      "ytick.color": "black", "axes.grid": True, "grid.alpha": 0.3, "font.size": 9, "axes.titlesize": 10,
      "legend.fontsize": 8, "figure.dpi": 100}
EPOCH_LABEL = "epoch (end of)"
PHASE_COLOR, EVENT_COLOR = "tab:purple", "tab:red"


def new_figure(columns: int, title: str, rows: int = 1, width: float = 4.6, height: float = 3.4):
    """(figure, flat list of axes) under the report's style."""
    with plt.rc_context(RC):
        figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    figure.suptitle(title, fontsize=11)
    return figure, list(axes.ravel())


def save(figure, path: Path) -> Path:
    """Writes the PNG (opaque white background) and closes the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(RC):
        figure.tight_layout()
        figure.savefig(path, dpi=110, facecolor="white")
    plt.close(figure)
    return path


def phase_switches(history: pd.DataFrame) -> list[int]:
    """Epochs (1-based) after which a new phase starts, from history.csv's `phase` column."""
    if "phase" not in history.columns or history.empty:
        return []
    phase = history["phase"].to_numpy()
    return [int(history["epoch"].iloc[i - 1]) for i in range(1, len(phase)) if phase[i] != phase[i - 1]]


def lr_events(history: pd.DataFrame) -> list[tuple[int, str]]:
    """(epoch, decision) for each exploration decision in history.csv's `lr_event` column."""
    if "lr_event" not in history.columns:
        return []
    return [(int(epoch), str(text)) for epoch, text in zip(history["epoch"], history["lr_event"])
            if isinstance(text, str) and text.strip()]


def integer_epochs(axis) -> None:
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def mark_events(axis, history: pd.DataFrame, label: bool = True) -> None:
    """Vertical lines: phase switches (solid purple), exploration decisions (dotted red, named by their kind).
    Also puts the epoch axis on whole epochs."""
    integer_epochs(axis)
    for i, epoch in enumerate(phase_switches(history)):
        axis.axvline(epoch, color=PHASE_COLOR, linewidth=1.2, alpha=0.8,
                     label="phase switch" if label and i == 0 else None)
    for i, (epoch, text) in enumerate(lr_events(history)):
        kinds = " + ".join(part.split(":")[0].strip() for part in text.split(";") if ":" in part)
        axis.axvline(epoch, color=EVENT_COLOR, linestyle=":", linewidth=1.2,
                     label="exploration decision" if label and i == 0 else None)
        axis.annotate(kinds, (epoch, 0.97), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                      color=EVENT_COLOR, ha="center", va="top",
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})


def numeric(history: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of the rows where `column` was logged."""
    if column not in history.columns:
        return np.array([]), np.array([])
    values = pd.to_numeric(history[column], errors="coerce")
    kept = values.notna()
    return history.loc[kept, "epoch"].to_numpy(dtype=float), values[kept].to_numpy(dtype=float)


def has_values(history: pd.DataFrame, column: str) -> bool:
    return len(numeric(history, column)[0]) > 0
