"""One row per run: its flags, final metrics, evaluate metrics, final training diagnostics, state.

Column names:
  run, run_dir, state, diverged          what and where (a diverged run is a result: a row, left out of statistics)
  reason                                 why a run is not done (tfregimes.base.run_files.run_state): where it
                                         diverged, the file that cannot be read (state corrupt), the error
  <flag>                                 each varied flag (numbers where the value is one)
  train_loss ... test_accuracy           metrics.json, full passes in inference mode at the end of training
  gap_accuracy, gap_loss                 the generalization gap from those four numbers: train − test accuracy,
                                         test − train loss (the only derived columns)
  epochs_run, wall_seconds, train_seconds,  metrics.json (the confusion set's loss and accuracy NaN without one)
  last_epoch_train_loss, confusion_loss,
  confusion_accuracy
  data                                   the digest of the data's fingerprint in metrics.json (equal: same data)
  stop/criterion, stop/target,           metrics.json's `stop` (--stop_at_train_loss / --stop_at_train_accuracy):
  stop/reached_target,                   train_loss or train_accuracy, its target, whether and at which epoch the
  stop/stopped_at_epoch,                 run reached it, and the clean loss and accuracy its last check read; None
  stop/clean_loss, stop/clean_accuracy   (NaN for the numbers) for a run without a stop or metrics.json
  eval/<split>_loss, eval/<split>_accuracy  the evaluate JSON's own loss and accuracy
  <metric>, sharpness/<space_eps>        each minimum metric entry's `value` from the evaluate JSON
  status/<metric>                        that entry's `status` where it has one (sharpness: L-BFGS-B's)
  final/<diagnostic>                     the last logged value of each training diagnostic in history.csv
  command                                how the run was started (flags.cfg "# Started as:")
  <flag>                                 every other flag of flags.cfg (or of the sweep's overrides), the same
                                         across the runs: a script reads any setting from the frame, none from
                                         the run files; None where a run has not written it yet
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from tfregimes.base.run_files import FINISHED
from tfregimes.results.runs import (
    RunRecord,
    finite,
    flag_value,
    load_runs,
    parse_value,
    varied_flags,
)

FINAL_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
RUN_METRICS = ("epochs_run", "wall_seconds", "train_seconds", "last_epoch_train_loss", "confusion_loss",
               "confusion_accuracy")
GAP_COLUMNS = ("gap_accuracy", "gap_loss")
# metrics.json's `stop` fields, as the columns stop/<field> (tfregimes.analysis reads exactly these names).
STOP_FIELDS = ("criterion", "target", "reached_target", "stopped_at_epoch", "clean_loss", "clean_accuracy")
STOP_COLUMNS = tuple(f"stop/{field}" for field in STOP_FIELDS)
# history.csv columns the training diagnostics log (docs/diagnostics.md, "Diagnostics during training").
DIAGNOSTIC_COLUMNS = ("angular_update", "weight_norm", "effective_lr", "effective_lr_per_epoch", "tuning_factor",
                      "momentum_scale", "margin_q1", "margin_median", "margin_q3", "margin_mean")
# Keys of an evaluate JSON that are not metrics of the minimum.
_EVALUATION_CONTEXT = frozenset({"model", "dataset", "split", "loss", "accuracy", "examples", "metrics_split",
                                 "metric_settings", "interpolation"})


def evaluation_metrics(evaluation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{column: entry} for every minimum metric in an evaluate JSON: an entry is the metric's object, with its
    `value`, named as the JSON names it (a metric with several values has several: `sharpness/full_eps1e-3`)."""
    return {name: entry for name, entry in (evaluation or {}).items()
            if name not in _EVALUATION_CONTEXT and isinstance(entry, dict) and "value" in entry}


def final_diagnostics(history: pd.DataFrame) -> dict[str, float]:
    """{final/<name>: the last non-empty value} of each training diagnostic the run logged."""
    values = {}
    for name in DIAGNOSTIC_COLUMNS:
        if name in history.columns:
            logged = pd.to_numeric(history[name], errors="coerce").dropna()
            if len(logged):
                values[f"final/{name}"] = float(logged.iloc[-1])
    return values


def run_row(record: RunRecord, flags: list[str], other_flags: list[str] = ()) -> dict[str, Any]:
    """The row of one run: `flags` (the varied ones) after its name and state, `other_flags` at the end."""
    row: dict[str, Any] = {"run": record.name, "run_dir": str(record.run_dir), "state": record.state,
                           "diverged": record.diverged, "reason": record.reason}
    row.update({flag: parse_value(flag_value(record, flag)) for flag in flags})
    metrics = record.metrics
    row.update({name: finite(metrics.get(name)) for name in FINAL_METRICS + RUN_METRICS})
    row["data"] = (metrics.get("data") or {}).get("digest")
    row["gap_accuracy"] = row["train_accuracy"] - row["test_accuracy"]
    row["gap_loss"] = row["test_loss"] - row["train_loss"]
    row.update(stop_columns(metrics.get("stop")))
    if record.evaluation:
        split = record.evaluation.get("split", "test")
        row[f"eval/{split}_loss"] = finite(record.evaluation.get("loss"))
        row[f"eval/{split}_accuracy"] = finite(record.evaluation.get("accuracy"))
    entries = evaluation_metrics(record.evaluation)
    row.update({column: finite(entry["value"]) for column, entry in entries.items()})
    row.update({f"status/{column}": entry["status"] for column, entry in entries.items() if "status" in entry})
    if record.state in FINISHED:
        row.update(final_diagnostics(record.history()))
    row["command"] = record.command
    row.update({flag: parse_value(flag_value(record, flag)) for flag in other_flags})
    return row


def stop_columns(stop: dict[str, Any] | None) -> dict[str, Any]:
    """The stop/<field> columns of metrics.json's `stop` (None or absent: no stop)."""
    stop = stop or {}
    return {"stop/criterion": stop.get("criterion"), "stop/target": finite(stop.get("target")),
            "stop/reached_target": stop.get("reached_target"),
            "stop/stopped_at_epoch": stop.get("stopped_at_epoch"),
            "stop/clean_loss": finite(stop.get("clean_loss")),
            "stop/clean_accuracy": finite(stop.get("clean_accuracy"))}


def short_of_target(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that ended without reaching their stop's target (stop/reached_target false): they are not
    at the training loss or accuracy the others stopped at, so not comparable with them as minima."""
    if "stop/reached_target" not in df.columns:
        return df.iloc[0:0]
    return df[df["stop/reached_target"].map(lambda reached: reached is not None and reached == reached  # not NaN
                                            and not reached)]


def every_flag(records: list[RunRecord]) -> list[str]:
    """Every flag any run wrote to flags.cfg or a sweep set for it, in flags.cfg order."""
    names: list[str] = []
    for record in records:
        names.extend(name for name in [*record.flags, *record.overrides] if name not in names)
    return names


def frame(records: list[RunRecord]) -> pd.DataFrame:
    flags = varied_flags(records)
    others = [name for name in every_flag(records) if name not in flags]
    df = pd.DataFrame([run_row(record, flags, others) for record in records])
    df.attrs["varied_flags"] = flags
    df.attrs["flags"] = flags + others
    return df


def collect(paths) -> pd.DataFrame:
    """The runs under `paths` (sweep directories, run directories, folders of run directories) as a DataFrame,
    one row per run (columns: this module's docstring), with a column for every flag of every run.
    `df.attrs["varied_flags"]` names the varied flags: a sweep's overrides, and the flags.cfg entries that differ
    across the runs; `df.attrs["flags"]` names every flag column; `df.attrs["skipped"]` the directories among
    `paths` with no run in them."""
    skipped: list = []
    records, _ = load_runs(paths, skipped)
    df = frame(records)
    df.attrs["skipped"] = [str(path) for path in skipped]
    return df


def corrupt_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs whose files cannot be read (state corrupt): counted in their group, in no statistic."""
    return df[df["state"] == "corrupt"]


def measure_columns(df: pd.DataFrame) -> list[str]:
    """The minimum metrics and final training diagnostics present in `df`, in column order."""
    fixed = {"run", "run_dir", "state", "diverged", "reason", "data", "command", *FINAL_METRICS, *RUN_METRICS,
             *GAP_COLUMNS, *STOP_COLUMNS, *df.attrs.get("varied_flags", []), *df.attrs.get("flags", [])}
    return [c for c in df.columns if c not in fixed and not c.startswith(("eval/", "status/"))]
