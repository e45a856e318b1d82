"""The regimes' runs as `tfregimes.results` reads them: one row per run, plus each run's per-epoch curves.

Nothing is recomputed: final metrics come from each run's metrics.json (through `tfregimes.results.collect`),
curves from its history.csv (learning rate, losses, accuracies and the `margins` diagnostic's quartiles, seed 000
A.1), and the run-time controller's decisions from metrics.json's `exploration` (flat_epoch, decay_epoch) and
history.csv's `lr_event` column.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from tfregimes.results import collect, load_runs

FINISHED = ("done", "diverged")
CURVE_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "margin_q1", "margin_median",
                 "margin_q3", "margin_mean")


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def run_curves(history: pd.DataFrame) -> dict[str, list]:
    """history.csv's columns as lists (None where a value was not logged), with the epochs of `lr_event`s."""
    curves = {"epoch": [int(e) for e in history["epoch"]]}
    for column in CURVE_COLUMNS:
        if column in history.columns:
            curves[column] = [_number(v) for v in pd.to_numeric(history[column], errors="coerce")]
    events = history["lr_event"].fillna("").astype(str) if "lr_event" in history.columns else []
    curves["lr_events"] = {int(e): text for e, text in zip(history["epoch"], events) if text}
    return curves


def read_regimes(work_dir: Path, regimes) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """(every finished run as a `collect` row with a `regime` column, {regime: [run, ...]}: each run's seed, state,
    final metrics, exploration decisions and curves). Runs that did not finish (an interrupted sweep read with
    --notrain) are left out; the verdicts' n says how many runs remain."""
    out, frames = {}, []
    for regime in regimes:
        sweep_dir = work_dir / regime
        df = collect([sweep_dir])
        df = df[df["state"].isin(FINISHED)].reset_index(drop=True)  # --notrain: unfinished runs are left out.
        frames.append(df.assign(regime=regime))
        records = {str(r.run_dir): r for r in load_runs([sweep_dir])[0]}
        runs = []
        for _, row in df.iterrows():
            record = records[row["run_dir"]]
            exploration = record.metrics.get("exploration") or {}
            runs.append({"run": row["run"], "seed": int(row["seed"]), "state": row["state"],
                         "diverged": bool(row["diverged"]),
                         "test_accuracy": None if row["diverged"] else float(row["test_accuracy"]),
                         "train_accuracy": None if row["diverged"] else float(row["train_accuracy"]),
                         "train_loss": None if row["diverged"] else float(row["train_loss"]),
                         "wall_seconds": float(row["wall_seconds"]),
                         "flat_epoch": exploration.get("flat_epoch"), "decay_epoch": exploration.get("decay_epoch"),
                         "curves": run_curves(record.history())})
        out[regime] = runs
    return pd.concat(frames, ignore_index=True), out
