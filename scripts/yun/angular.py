"""Seed 002 Figure 3 (and 4) at CPU scale: the angular update per epoch (eq. 11, tfregimes' `angular` training
diagnostic, whole weight vector: every trainable weight of the network is scale-invariant) of the marked cells.

Claims (§5.1): after an initial transient the marked cells, which share the tuning factor T, show "very similar
angular updates" per epoch; and eq. 27 gives that value: cos Δθ ≈ 1 − T, Δθ = arccos(1 − T)
(`tfregimes.diagnostics.dynamics.learning_rate.equilibrium_angular_update`). "After the transient" is measured
here, run by run, as the mean Δθ over the second half of the first learning-rate phase (the paper's curves settle
within its first phase, 150 epochs). Both are claims of no difference, so both are "equivalent" verdicts on log Δθ
with a stated margin (`tfregimes.analysis.verdict`).
"""

from __future__ import annotations

import math

import numpy as np
from reproduction import Claim, new_figure, save_figure

from tfregimes.analysis import comparable, mean_effect, paired_difference, summarize, verdict
from tfregimes.diagnostics.dynamics.learning_rate import equilibrium_angular_update
from yun.setting import Column, Setting

# The paper compares the curves of the marked cells epoch by epoch after the transient (§5.1, Figures 3 and 4): a
# claim about training dynamics over the same epochs of the same schedule, not about minima.
SAME_EPOCHS = comparable("training dynamics: Δθ over the same epochs of the same schedule, as the paper compares "
                         "the curves after the transient (§5.1, Figures 3 and 4)")
# Measured against eq. 27's value: within a quarter either way (log 1.25 = 0.22), the tolerance the page stated
# before these reruns; a little wider than the grid's resolution (`same_margin`, 0.18 at T = 0.16) because eq. 27 is
# a first-order approximation ("we assumed that the parameters do not move far during the update", §4).
PREDICTED_MARGIN = math.log(1.25)


def window(epochs: int) -> tuple[int, int]:
    """0-based epoch slice [start, stop): the second half of the first phase (the rate drops at 50 % of the run)."""
    stop = max(1, epochs // 2)
    return min(epochs // 4, stop - 1), stop


def in_cell(run: dict, column: Column, exponent: int, epochs: int) -> bool:
    return (run["num_train"] == column.num_train and run["batch_size"] == column.batch_size
            and run["exponent"] == exponent and not run["diverged"] and len(run["angular_update"]) == epochs)


def mean_curve(records: list[dict], column: Column, exponent: int, epochs: int) -> list[float] | None:
    """Angular update per epoch averaged over the cell's finished runs, for the figure (None: no finished run)."""
    curves = [[math.nan if v is None else v for v in r["angular_update"]] for r in records
              if in_cell(r, column, exponent, epochs)]
    return np.nanmean(np.array(curves, dtype=float), axis=0).tolist() if curves else None


def settled(records: list[dict], column: Column, exponent: int, epochs: int) -> dict[int, float]:
    """Seed → the run's mean Δθ over `window` (a measurement of one run; NaN where the window has none)."""
    start, stop = window(epochs)
    out = {}
    for run in records:
        if in_cell(run, column, exponent, epochs):
            values = np.array([math.nan if v is None else v for v in run["angular_update"][start:stop]], dtype=float)
            out[run["seed"]] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


def log_of(values: dict[int, float]) -> dict[int, float]:
    return {seed: math.log(v) if math.isfinite(v) and v > 0 else math.nan for seed, v in values.items()}


def same_margin(tuning_factor: float) -> float:
    """Half the log change of eq. 27's Δθ that one ×2 step of λ (the paper's grid step, §5.1) predicts:
    ½·log(arccos(1 − 2T) / arccos(1 − T)). Two cells closer than this are nearer each other than to a neighbouring
    row's prediction: the grid's resolution, fixed by T before any run."""
    return 0.5 * math.log(equilibrium_angular_update(min(2.0, 2 * tuning_factor))
                          / equilibrium_angular_update(tuning_factor))


def analyse_angular(records: list[dict], grid: Setting, columns: list[Column]) -> dict:
    """Per column: the mean curves of its rows (the figure) and its marked cell's settled Δθ by seed; the effects
    of the two claims: each other column's marked cell against the reference column's (log Δθ difference, paired
    by seed), and every marked run against eq. 27 (mean log(Δθ / arccos(1 − T)))."""
    tuning_factor = grid.marked_tuning_factor
    predicted = equilibrium_angular_update(tuning_factor)
    if grid.reference not in columns:
        raise ValueError(f"the columns {columns} must include the reference column {grid.reference}")
    out = []
    for column in columns:
        marked = grid.marked_exponent(column)
        values = settled(records, column, marked, grid.epochs)
        out.append({"num_train": column.num_train, "batch_size": column.batch_size, "marked": marked,
                    "reference": column == grid.reference,
                    "curves": {j: mean_curve(records, column, j, grid.epochs) for j in grid.row_exponents(column)},
                    "settled": values, "summary": summarize(values.values())})
    reference = next(c for c in out if c["reference"])
    for column in out:
        if not column["reference"]:
            column["effect"] = paired_difference(
                log_of(column["settled"]), log_of(reference["settled"]),
                name=f"log Δθ at (N, B) = ({column['num_train']}, {column['batch_size']}) − at "
                     f"({reference['num_train']}, {reference['batch_size']}), marked cells, paired by seed")
    ratios = [v - math.log(predicted) for c in out for v in log_of(c["settled"]).values()]
    return {"window": list(window(grid.epochs)), "epochs": grid.epochs, "tuning_factor": tuning_factor,
            "predicted": predicted, "columns": out, "same_margin": same_margin(tuning_factor),
            "predicted_margin": PREDICTED_MARGIN,
            "to_predicted": mean_effect(ratios, name="mean log(Δθ / arccos(1 − T)) over the marked runs")}


def claims(analysis: dict, label: str) -> list[Claim]:
    """One "equivalent" claim per column besides the reference (each its own verdict), and one for eq. 27."""
    start, stop = analysis["window"]

    def name(column: dict) -> str:
        return f"{label} = {column['num_train'] if label == 'N' else column['batch_size']}"
    reference = next(c for c in analysis["columns"] if c["reference"])
    margin = analysis["same_margin"]
    out = []
    for column in analysis["columns"]:
        if column["reference"]:
            continue
        out.append((f"The marked cells of {name(column)} and {name(reference)} (tuning factor fixed) settle to the "
                    "same angular update per epoch after the transient (Figure 3)",
                    verdict(column["effect"], "equivalent", margin=margin, comparability=SAME_EPOCHS),
                    f"mean Δθ over epochs {start + 1}–{stop} (rad): {name(column)}: {column['summary'].text()}, "
                    f"{name(reference)}: {reference['summary'].text()}; margin ±{margin:.3f} in log Δθ "
                    f"(×{math.exp(margin):.3f}): half the log change eq. 27 predicts for one ×2 step of λ, "
                    f"arccos(1 − 2T) / arccos(1 − T) = {math.exp(2 * margin):.3f} at T = "
                    f"{analysis['tuning_factor']:.4g}"))
    settled_text = "; ".join(f"{name(c)}: {c['summary'].text()}" for c in analysis["columns"])
    out.append(("That common value is eq. 27's equilibrium Δθ = arccos(1 − T)",
                verdict(analysis["to_predicted"], "equivalent", margin=analysis["predicted_margin"],
                        comparability=SAME_EPOCHS),
                f"T = {analysis['tuning_factor']:.4g}, arccos(1 − T) = {analysis['predicted']:.4f} rad; mean Δθ "
                f"over epochs {start + 1}–{stop} (rad): {settled_text}; margin ±log 1.25 = "
                f"±{analysis['predicted_margin']:.3f} in log Δθ (a quarter either way; eq. 27 is a first-order "
                f"approximation, §4; one ×2 step of λ changes its Δθ ×{math.exp(2 * analysis['same_margin']):.3f})"))
    return out


def plot(analysis: dict, path, title: str, label: str) -> None:
    fig, ax = new_figure(figsize=(8, 4.8))
    epochs = np.arange(1, analysis["epochs"] + 1)
    for column in analysis["columns"]:
        name = f"{label}={column['num_train'] if label == 'N' else column['batch_size']}"
        curve = column["curves"].get(column["marked"])
        if curve is None:
            continue
        line, = ax.plot(epochs, curve, "o-", markersize=3, label=f"{name}, marked λ")
        for j, other in column["curves"].items():
            if other is not None and abs(j - column["marked"]) == 2:
                ax.plot(epochs, other, ":", color=line.get_color(), alpha=0.6)
    ax.axhline(analysis["predicted"], color="black", linestyle="--",
               label=f"eq. 27: arccos(1 − T), T = {analysis['tuning_factor']:.3g}")
    start, stop = analysis["window"]
    ax.axvspan(start + 0.5, stop + 0.5, color="gray", alpha=0.15, label="window of the verdict")
    ax.set(xlabel="epoch", ylabel="angular update per epoch Δθ (rad)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="dotted: λ ×4 and ÷4", title_fontsize=7)
    save_figure(fig, path)
