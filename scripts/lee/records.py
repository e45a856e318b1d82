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
CURVE_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "stop_clean_loss", "margin_q1",
                 "margin_median",
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


def _flag(row: pd.Series, name: str):
    value = row.get(name)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def read_sweeps(work_dir: Path, names) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """(every finished run as a `collect` row with a `regime` column (its sweep's name), {sweep: [run, ...]}: each
    run's seed, state, final metrics, the flags a sweep varies, where it stopped, its exploration decisions and
    curves). Runs that did not finish (an interrupted sweep read with --notrain) are left out; the verdicts' n says
    how many runs remain; a sweep not run yet has none."""
    out, frames = {}, []
    for name in names:
        sweep_dir = work_dir / name
        if not (sweep_dir / "sweep.json").exists():
            out[name] = []
            continue
        df = collect([sweep_dir])
        df = df[df["state"].isin(FINISHED)].reset_index(drop=True)  # --notrain: unfinished runs are left out.
        frames.append(df.assign(regime=name))
        records = {str(r.run_dir): r for r in load_runs([sweep_dir])[0]}
        runs = []
        for _, row in df.iterrows():
            record = records[row["run_dir"]]
            exploration = record.metrics.get("exploration") or {}
            stop = record.metrics.get("stop") or {}
            done = not row["diverged"]
            runs.append({"run": row["run"], "seed": int(row["seed"]), "state": row["state"],
                         "diverged": bool(row["diverged"]),
                         "test_accuracy": float(row["test_accuracy"]) if done else None,
                         "train_accuracy": float(row["train_accuracy"]) if done else None,
                         "train_loss": float(row["train_loss"]) if done else None,
                         "validation_accuracy": record.metrics.get("validation_accuracy") if done else None,
                         "learning_rate": float(row["learning_rate"]),
                         "warmup_epochs": float(_flag(row, "warmup_epochs") or 0),
                         "extra_exploration_epochs": _flag(row, "extra_exploration_epochs"),
                         "reached_target": bool(stop.get("reached_target")),
                         "epochs_run": int(row["epochs_run"]),
                         "wall_seconds": float(row["wall_seconds"]),
                         "flat_epoch": exploration.get("flat_epoch"), "decay_epoch": exploration.get("decay_epoch"),
                         "curves": run_curves(record.history())})
        out[name] = runs
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["regime"])), out
