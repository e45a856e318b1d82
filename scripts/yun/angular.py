"""Seed 002 Figure 3 (and 4) at CPU scale: the angular update per epoch (eq. 11, tfregimes' `angular` training
diagnostic, whole weight vector: every trainable weight of the network is scale-invariant) of the marked cells.

Claims (§5.1): after an initial transient the marked cells, which share the tuning factor T, show the same angular
update per epoch; and eq. 27 gives it: cos Δθ ≈ 1 − T, Δθ = arccos(1 − T)
(`tfregimes.diagnostics.dynamics.learning_rate.equilibrium_angular_update`). "After the transient" is measured
here as the mean over the second half of the first learning-rate phase (the paper's curves settle within its first
phase, 150 epochs); the scale of "the same" is the change that one grid step of λ (×2) makes to Δθ in those columns.
"""

from __future__ import annotations

import math

import numpy as np
from reproduction import new_figure, save_figure

from tfregimes.diagnostics.dynamics.learning_rate import equilibrium_angular_update
from yun.setting import Column, Setting


def window(epochs: int) -> tuple[int, int]:
    """0-based epoch slice [start, stop): the second half of the first phase (the rate drops at 50 % of the run)."""
    stop = max(1, epochs // 2)
    return min(epochs // 4, stop - 1), stop


def mean_curve(records: list[dict], column: Column, exponent: int, epochs: int) -> list[float] | None:
    """Angular update per epoch averaged over the cell's finished runs (None: no finished run)."""
    curves = [[math.nan if v is None else v for v in r["angular_update"]] for r in records
              if r["num_train"] == column.num_train and r["batch_size"] == column.batch_size
              and r["exponent"] == exponent and not r["diverged"] and len(r["angular_update"]) == epochs]
    return np.nanmean(np.array(curves, dtype=float), axis=0).tolist() if curves else None


def window_mean(curve: list[float] | None, epochs: int) -> float:
    if curve is None:
        return math.nan
    start, stop = window(epochs)
    return float(np.nanmean(curve[start:stop]))


def analyse_angular(records: list[dict], grid: Setting, columns: list[Column]) -> dict:
    predicted = equilibrium_angular_update(grid.marked_tuning_factor)
    out, row_ratios = [], []
    for column in columns:
        marked = grid.marked_exponent(column)
        curves = {j: mean_curve(records, column, j, grid.epochs) for j in grid.row_exponents(column)}
        settled = {j: window_mean(c, grid.epochs) for j, c in curves.items()}
        # Δθ per ×2 of λ, from the marked row to its neighbours: the resolution "the same value" is judged at.
        for low, high in ((marked - 1, marked), (marked, marked + 1)):
            if low in settled and high in settled and settled[low] > 0 and settled[high] > 0:
                row_ratios.append(settled[high] / settled[low])
        out.append({"num_train": column.num_train, "batch_size": column.batch_size, "marked": marked,
                    "curves": {str(j): c for j, c in curves.items()},
                    "settled": {str(j): v for j, v in settled.items()},
                    "marked_settled": settled.get(marked, math.nan),
                    "marked_first_epoch": curves[marked][0] if curves.get(marked) else math.nan})
    values = [c["marked_settled"] for c in out if math.isfinite(c["marked_settled"])]
    firsts = [c["marked_first_epoch"] for c in out if math.isfinite(c["marked_first_epoch"])]
    # The window's last epoch alone (the end of the first phase): reported beside the verdict, not used by it.
    lasts = [curves_last for c in out if (curve := c["curves"].get(str(c["marked"])))
             and math.isfinite(curves_last := curve[window(grid.epochs)[1] - 1])]
    return {"window": list(window(grid.epochs)), "epochs": grid.epochs,
            "tuning_factor": grid.marked_tuning_factor, "predicted": predicted, "columns": out,
            "spread": max(values) / min(values) if values else math.nan,
            "first_epoch_spread": max(firsts) / min(firsts) if firsts else math.nan,
            "phase_end": lasts, "phase_end_spread": max(lasts) / min(lasts) if lasts else math.nan,
            "row_ratio": float(np.exp(np.mean(np.log(row_ratios)))) if row_ratios else math.nan,
            "ratio_to_predicted": float(np.exp(np.mean(np.log(values)))) / predicted if values else math.nan}


def verdicts(analysis: dict, label: str) -> list[tuple[str, str, str]]:
    spread, step = analysis["spread"], analysis["row_ratio"]
    common = ("holds" if spread <= math.sqrt(step) else "partly" if spread <= step else "does not hold") \
        if math.isfinite(spread) and math.isfinite(step) else "does not hold"
    start, stop = analysis["window"]
    settled = ", ".join(f"{label}={c['num_train'] if label == 'N' else c['batch_size']}: {c['marked_settled']:.4f}"
                        for c in analysis["columns"])
    out = [(f"The marked cells ({label} varies, tuning factor fixed) settle to a common angular update per epoch "
            "after the transient (Figure 3)", common,
            f"mean Δθ over epochs {start + 1}–{stop} (rad): {settled}; spread max/min {spread:.3f}, against "
            f"×{step:.3f} per ×2 step of λ next to the marked cells (holds: spread ≤ √step, partly: ≤ step); "
            f"spread in epoch 1 (the transient) {analysis['first_epoch_spread']:.3f}, in epoch {stop} alone (the "
            f"first phase's last) {analysis['phase_end_spread']:.3f} ("
            + ", ".join(f"{v:.4f}" for v in analysis["phase_end"]) + ")")]
    ratio = analysis["ratio_to_predicted"]
    close = ("holds" if 0.8 <= ratio <= 1.25 else "partly" if 0.5 <= ratio <= 2.0 else "does not hold") \
        if math.isfinite(ratio) else "does not hold"
    out.append(("That common value is eq. 27's equilibrium Δθ = arccos(1 − T)", close,
                f"T = {analysis['tuning_factor']:.4g}, arccos(1 − T) = {analysis['predicted']:.4f} rad; measured "
                f"(geometric mean of the marked cells) / predicted = {ratio:.3f} (holds: within ×1.25, partly: ×2)"))
    return out


def plot(analysis: dict, path, title: str, label: str) -> None:
    fig, ax = new_figure(figsize=(8, 4.8))
    epochs = np.arange(1, analysis["epochs"] + 1)
    for column in analysis["columns"]:
        name = f"{label}={column['num_train'] if label == 'N' else column['batch_size']}"
        curve = column["curves"].get(str(column["marked"]))
        if curve is None:
            continue
        line, = ax.plot(epochs, curve, "o-", markersize=3, label=f"{name}, marked λ")
        for j, other in column["curves"].items():
            if other is not None and abs(int(j) - column["marked"]) == 2:
                ax.plot(epochs, other, ":", color=line.get_color(), alpha=0.6)
    ax.axhline(analysis["predicted"], color="black", linestyle="--",
               label=f"eq. 27: arccos(1 − T), T = {analysis['tuning_factor']:.3g}")
    start, stop = analysis["window"]
    ax.axvspan(start + 0.5, stop + 0.5, color="gray", alpha=0.15, label="window of the verdict")
    ax.set(xlabel="epoch", ylabel="angular update per epoch Δθ (rad)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="dotted: λ ×4 and ÷4", title_fontsize=7)
    save_figure(fig, path)
