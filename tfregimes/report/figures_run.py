"""Figures of one run, each drawn from what the run recorded (history.csv, diagnostics/, TensorBoard) and returned
as a matplotlib Figure (its Axes lines hold the plotted series), or None when the run logged nothing for it."""

from __future__ import annotations

import json
import math

import numpy as np

from tfregimes.report.style import (
    EPOCH_LABEL,
    has_values,
    mark_events,
    new_figure,
    numeric,
)
from tfregimes.results import RunRecord


def _history(record: RunRecord):
    history = record.history()
    return history if "epoch" in history.columns else None


def learning_curves(record: RunRecord):
    """Loss and accuracy, train (running mean over each epoch) and test (a full pass), vs epoch."""
    history = _history(record)
    if history is None:
        return None
    figure, (loss, accuracy) = new_figure(2, f"{record.name}: learning curves (history.csv)")
    for axis, (train, test, label) in zip((loss, accuracy), (("loss", "val_loss", "cross-entropy (nats)"),
                                                             ("accuracy", "val_accuracy", "accuracy (fraction)"))):
        axis.plot(*numeric(history, train), marker=".", label=f"train ({train}, epoch running mean)")
        if has_values(history, test):
            axis.plot(*numeric(history, test), marker=".", label=f"test ({test})")
        mark_events(axis, history)
        axis.set(xlabel=EPOCH_LABEL, ylabel=label, title="loss" if train == "loss" else "accuracy")
        axis.legend()
    if (numeric(history, "loss")[1] > 0).all():
        loss.set_yscale("log")
    return figure


def learning_rate(record: RunRecord):
    """The learning rate of each epoch's last step, as the optimizer used it."""
    history = _history(record)
    if history is None or not has_values(history, "learning_rate"):
        return None
    figure, (axis,) = new_figure(1, f"{record.name}: learning rate", width=6)
    axis.plot(*numeric(history, "learning_rate"), marker=".", drawstyle="steps-pre", label="η (last step of the epoch)")
    mark_events(axis, history)
    axis.set(xlabel=EPOCH_LABEL, ylabel="η (per step)", yscale="log", title="learning rate of the epoch's last step")
    axis.legend()
    return figure


def angular_update(record: RunRecord):
    """Seed 002 eq. 11: angle between consecutive epochs' weights, whole vector and the spread over layers."""
    history = _history(record)
    if history is None or not has_values(history, "angular_update"):
        return None
    figure, (axis,) = new_figure(1, f"{record.name}: angular update (seed 002 eq. 11)", width=6)
    axis.plot(*numeric(history, "angular_update"), marker=".", color="black", label="all weights")
    path = record.diagnostics_path("angular_update_layers.jsonl")
    if path.exists():
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        epochs = np.array([line["epoch"] for line in lines], dtype=float)
        layers = np.array([list(line["layers"].values()) for line in lines], dtype=float)
        axis.fill_between(epochs, layers.min(axis=1), layers.max(axis=1), alpha=0.25, color="tab:blue",
                          label=f"per layer: min–max over {layers.shape[1]} layers")
        axis.plot(epochs, np.median(layers, axis=1), linestyle="--", color="tab:blue", label="per layer: median")
    mark_events(axis, history)
    axis.set(xlabel=EPOCH_LABEL, ylabel="angle (radians)", yscale="log",
             title=r"$\angle(x_{e-1}, x_e)$ = 2·arcsin(‖x̂ − ŷ‖/2), x̂ = x/‖x‖")
    axis.legend()
    return figure


def effective_learning_rate(record: RunRecord):
    """Seed 002 eqs. 9 and 27: effective LR η/‖x‖², the weight norm ‖x‖, and the tuning factor."""
    history = _history(record)
    if history is None or not has_values(history, "effective_lr"):
        return None
    panels = [("effective_lr", "η/‖x‖² (per step)", "effective LR (eq. 9)", True),
              ("weight_norm", "‖x‖ (L2 norm of the weights)", "weight norm", False),
              ("tuning_factor", "Nηλ/(B(1−μ)) (dimensionless)", "tuning factor (eq. 27)", True)]
    panels = [panel for panel in panels if has_values(history, panel[0])]
    figure, axes = new_figure(len(panels), f"{record.name}: effective learning rate (seed 002)")
    for axis, (column, ylabel, title, log) in zip(axes, panels):
        axis.plot(*numeric(history, column), marker=".", label=column)
        mark_events(axis, history, label=False)
        axis.set(xlabel=EPOCH_LABEL, ylabel=ylabel, title=title, yscale="log" if log else "linear")
        axis.legend()
    return figure


def _phase_momenta(record: RunRecord, history) -> list[tuple[float, float, float]]:
    """(first epoch, last epoch, μ) of each SGD phase with momentum, from flags.cfg and history's phase column."""
    flags = record.flags
    phases = [(flags.get("optimizer"), flags.get("momentum")),
              (flags.get("phase2_optimizer"), flags.get("phase2_momentum"))]
    spans = []
    phase_column = history["phase"] if "phase" in history.columns else np.ones(len(history), dtype=int)
    for index, (optimizer, momentum) in enumerate(phases, start=1):
        epochs = history["epoch"][np.asarray(phase_column) == index]
        if optimizer in ("sgd", None) and momentum and len(epochs) and 0 < float(momentum) < 1:
            spans.append((float(epochs.min()), float(epochs.max()), float(momentum)))
    return spans


def momentum(record: RunRecord):
    """Seed 001 eq. 4: momentum scale r_t against 1/(1−μ); eq. 3: alignment s_t with the final weights."""
    history = _history(record)
    path = record.diagnostics_path("momentum_alignment.json")
    if history is None or not (has_values(history, "momentum_scale") or path.exists()):
        return None
    figure, (scale, alignment) = new_figure(2, f"{record.name}: momentum (seed 001)")
    scale.plot(*numeric(history, "momentum_scale"), marker="o", label="r_t = ‖g_t‖/‖∇f(w_t)‖")
    for i, (first, last, mu) in enumerate(_phase_momenta(record, history)):
        scale.hlines(1 / (1 - mu), first - 0.5, last + 0.5, colors="tab:orange", linestyles="--",
                     label="1/(1−μ), the quadratic's limit" if i == 0 else None)
    mark_events(scale, history, label=False)
    scale.set(xlabel=EPOCH_LABEL, ylabel="r_t (ratio of norms)", title="momentum scale (eq. 4)")
    scale.legend()
    if path.exists():
        records = sorted(json.loads(path.read_text()), key=lambda r: r["epoch"])
        kept = [r for r in records if r.get("alignment") is not None and math.isfinite(r["alignment"])]
        alignment.plot([r["epoch"] for r in kept], [r["alignment"] for r in kept], marker="o",
                       label="s_t = cos(v_t, x* − x_t)")
        alignment.axhline(1.0, color="tab:orange", linestyle="--", label="1: pointing at x*")
    mark_events(alignment, history, label=False)
    alignment.set(xlabel=EPOCH_LABEL, ylabel="s_t (cosine)", title="alignment with the final weights (eq. 3)",
                  xlim=scale.get_xlim())
    alignment.legend()
    return figure


def margins(record: RunRecord, final_histogram=None):
    """Seed 000 A.1: quartiles of the first-order input margins over epochs, and the last measured
    distribution (`final_histogram`: (epoch, left edges, right edges, counts) from TensorBoard, or None)."""
    history = _history(record)
    if history is None or not has_values(history, "margin_median"):
        return None
    unit = ("d/√(tr Cov x) (normalized input distance)"
            if record.flags.get("margin_normalization", "total_variation") == "total_variation"
            else "d (input-space distance)")
    figure, axes = new_figure(2 if final_histogram else 1, f"{record.name}: first-order margins (seed 000 A.1)")
    quartiles = axes[0]
    epochs, q1 = numeric(history, "margin_q1")
    quartiles.fill_between(epochs, q1, numeric(history, "margin_q3")[1], alpha=0.25, label="q1–q3")
    quartiles.plot(*numeric(history, "margin_q1"), linewidth=0.8, color="tab:blue", label="q1")
    quartiles.plot(*numeric(history, "margin_median"), marker=".", color="tab:blue", label="median")
    quartiles.plot(*numeric(history, "margin_q3"), linewidth=0.8, color="tab:blue", label="q3")
    quartiles.plot(*numeric(history, "margin_mean"), linestyle="--", color="black", label="inter-quartile mean")
    quartiles.axhline(0, color="gray", linewidth=0.8)
    mark_events(quartiles, history, label=False)
    quartiles.set(xlabel=EPOCH_LABEL, ylabel=unit, title="d = (f_y − f_c)/‖∇ₓf_y − ∇ₓf_c‖₂, quartiles")
    quartiles.legend()
    if final_histogram:
        epoch, left, right, counts = final_histogram
        axes[1].bar(left, counts, width=right - left, align="edge", edgecolor="black", linewidth=0.3)
        axes[1].axvline(0, color="tab:red", linewidth=0.8, label="0: misclassified to the left")
        axes[1].set(xlabel=unit, ylabel="training examples", title=f"distribution after epoch {epoch}")
        axes[1].legend()
    return figure


RUN_FIGURES = {"learning_curves": learning_curves, "learning_rate": learning_rate, "angular_update": angular_update,
               "effective_lr": effective_learning_rate, "momentum": momentum}
