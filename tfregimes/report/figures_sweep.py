"""Figures of a sweep (or several runs): a quantity against the axis flag `x`, mean over seeds with ± one sample
standard deviation as error bars, one line per setting of the other varied flags; learning curves per group.
Only runs that finished without diverging enter (the results table counts the others)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfregimes.report.style import EPOCH_LABEL, integer_epochs, new_figure
from tfregimes.results import RunRecord, group_summary
from tfregimes.results.table import SEED_FLAG, format_value

LABELS = {  # y-axis label of a column: what it is, its unit, where its formula lives
    "test_accuracy": "test accuracy (fraction)",
    "train_accuracy": "train accuracy (fraction)",
    "gap_accuracy": "train − test accuracy (fraction)",
    "gap_loss": "test − train loss (nats)",
    "fisher_logdet": "γ̂ = mean ln|J Jᵀ| (seed 004 eq. 5)",
    "margins": "inter-quartile mean margin (seed 000 A.1)",
    "spectral_radius": "ρ ≈ ‖J‖₂²/N' (seed 004 app. D)",
    "robustness": "(1/N) Σ‖J_x‖² (seed 004 §7.1)",
    "hessian_top": "λ_max(H) (power iteration)",
    "hessian_trace": "tr H (Hutchinson)",
}


def label(column: str) -> str:
    if column.startswith("sharpness/"):
        return f"φ {column.split('/', 1)[1]} (%, seed 003 eq. 3/4)"
    return LABELS.get(column, column)


def other_flags(df: pd.DataFrame, x: str | None) -> list[str]:
    return [f for f in df.attrs.get("varied_flags", []) if f not in (x, SEED_FLAG)]


def _positions(values: list) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x values as they are; text values as categories 0, 1, … (with their tick labels)."""
    if all(isinstance(v, (int, float, np.number)) for v in values):
        return np.asarray(values, dtype=float), None
    categories = sorted({str(v) for v in values})
    return np.array([categories.index(str(v)) for v in values], dtype=float), categories


def metrics_vs_x(df: pd.DataFrame, x: str, columns: list[str], title: str):
    """One panel per column: its mean over done runs against `x`, error bars ± std over seeds."""
    others = other_flags(df, x)
    summary = group_summary(df, [x, *others], columns)
    summary = summary[summary["done"] > 0]
    if summary.empty:
        return None
    per_row = min(3, len(columns))
    figure, axes = new_figure(per_row, title, rows=-(-len(columns) // per_row), width=4.4)
    for unused in axes[len(columns):]:
        unused.set_visible(False)
    numeric_x, categories = _positions(summary[x].tolist())
    summary = summary.assign(_x=numeric_x)
    for axis, column in zip(axes, columns):
        groups = summary.groupby(others, sort=False) if others else [((), summary)]
        for key, group in groups:
            group = group.sort_values("_x")
            name = ", ".join(f"{f}={format_value(v)}" for f, v in zip(others, np.atleast_1d(key))) or "mean ± std"
            axis.errorbar(group["_x"].to_numpy(float), group[f"{column}/mean"].to_numpy(float),
                          yerr=group[f"{column}/std"].fillna(0.0).to_numpy(float),
                          marker="o", capsize=3, label=name)
        if categories:
            axis.set_xticks(range(len(categories)), categories)
        elif (numeric_x > 0).all() and numeric_x.max() >= 10 * numeric_x.min():
            axis.set_xscale("log")
        axis.set(xlabel=f"--{x}", ylabel=label(column), title=column)
        axis.legend()
    return figure


def learning_curves_by_group(records: list[RunRecord], df: pd.DataFrame, group_by: list[str]):
    """Test accuracy and train/test loss per epoch, averaged over each group's done runs (its seeds)."""
    histories = {record.name: record.history() for record in records}
    done = df[df["state"] == "done"]
    if done.empty:
        return None
    figure, (loss, accuracy) = new_figure(2, "learning curves per group (mean over seeds, history.csv)")
    groups = done.groupby(group_by, sort=False) if group_by else [((), done)]
    for index, (key, group) in enumerate(groups):
        name = ", ".join(f"{f}={format_value(v)}" for f, v in zip(group_by, np.atleast_1d(key))) or "all runs"
        frames = [histories[run].set_index("epoch") for run in group["run"] if "epoch" in histories[run]]
        if not frames:
            continue
        mean = pd.concat(frames).groupby(level=0).mean(numeric_only=True)
        color = f"C{index % 10}"
        loss.plot(mean.index, mean["loss"], color=color, label=f"{name} train (n={len(frames)})")
        if "val_loss" in mean:
            loss.plot(mean.index, mean["val_loss"], color=color, linestyle="--", label=f"{name} test")
        if "val_accuracy" in mean:
            accuracy.plot(mean.index, mean["val_accuracy"], color=color, marker=".", label=name)
    loss.set(xlabel=EPOCH_LABEL, ylabel="cross-entropy (nats)", title="loss: train (solid), test (dashed)")
    accuracy.set(xlabel=EPOCH_LABEL, ylabel="test accuracy (fraction)", title="test accuracy")
    for axis in (loss, accuracy):
        integer_epochs(axis)
        axis.legend(fontsize=7, framealpha=0.7)
    return figure
