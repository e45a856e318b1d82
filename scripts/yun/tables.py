"""Seed 002 Tables 1 and 3 at CPU scale: test accuracy per (λ, column) cell over seeds, the cells marked by the
tuning factor, and, one claim per column, whether the marked cell is the column's best (§5.1).

As the paper does (§5.1), a cell's mean is over the runs that did not diverge, and a cell whose runs all diverged is
left blank; a run is a dict from `setting.read_column`. Every summary, effect and verdict comes from
`tfregimes.analysis`.
"""

from __future__ import annotations

import math

import numpy as np
from reproduction import Claim

from tfregimes.analysis import Effect, Summary, comparable, paired_difference, summarize, verdict
from yun.setting import Column, Setting

# The paper compares cells after the same schedule, not at a training loss: "We train for 300 epochs regardless of
# the number of training samples" (§5.1), "a fixed epoch budget" (§1, scope of this work).
SAME_SCHEDULE = comparable("the paper compares the cells after the same schedule of epochs (§5.1: '300 epochs "
                           "regardless of the number of training samples'; §1: 'a fixed epoch budget'); every run "
                           "here trains the same epochs")

FAMILY_CONFIDENCE = 0.95  # Of the k comparisons a "best other" row is picked from, together (`best_other`).


def cell_stats(records: list[dict], column: Column, exponent: int, grid: Setting) -> dict:
    """The cell's test accuracy by seed (None: diverged), its summary over the finished runs, and how many
    diverged."""
    runs = [r for r in records if r["num_train"] == column.num_train and r["batch_size"] == column.batch_size
            and r["exponent"] == exponent]
    accuracy = {r["seed"]: r["test_accuracy"] for r in runs}
    return {"exponent": exponent, "weight_decay": grid.weight_decay(exponent), "accuracy": accuracy,
            "runs": len(runs), "diverged": sum(r["diverged"] for r in runs), "summary": summarize(accuracy.values())}


def rank_column(cells: dict[int, dict], marked: int) -> dict:
    """The column's rows by mean accuracy, best first (blank cells left out), and the marked row's rank (from 1): a
    ranking of means, for the table; whether the seeds tell the cells apart is `best_other`'s effect."""
    order = sorted((j for j, c in cells.items() if math.isfinite(c["summary"].mean)),
                   key=lambda j: -cells[j]["summary"].mean)
    return {"order": order, "best": order[0] if order else None, "marked": marked,
            "marked_rank": order.index(marked) + 1 if marked in order else None}


def best_other(cells: dict[int, dict], chosen: int) -> tuple[Effect, int | None]:
    """Test accuracy (points) of the `chosen` row minus that of the best other row by mean, paired by seed (seeds
    where either run diverged are left out), and that row. If the chosen row is the best, the other is the
    runner-up and the effect is its lead; if not, the effect is how far it trails the best (< 0: against a claim
    that it is the best). No other row, or no chosen row: an effect of no pairs.

    The other row is the top of k others picked by their means, so the largest of k noisy means: at 95 % a column
    flat within the seed noise would often show the chosen row "trailing" it. The interval is Bonferroni's over the
    k comparisons the pick was made from (confidence 1 − 0.05/k), so a flat column reads `inconclusive`."""
    others = sorted((j for j, c in cells.items() if j != chosen and math.isfinite(c["summary"].mean)),
                    key=lambda j: -cells[j]["summary"].mean)
    if not others or chosen not in cells:
        return paired_difference({}, {}, name="accuracy (points) at the λ − at the best other λ (no "
                                 + ("other λ" if chosen in cells else "run of the λ") + ")"), None
    points = {j: {seed: None if a is None else 100 * a for seed, a in cells[j]["accuracy"].items()}
              for j in (chosen, others[0])}
    name = (f"accuracy (points) at λ = {cells[chosen]['weight_decay']:.4g} − at the best of the {len(others)} "
            f"other λ ({cells[others[0]]['weight_decay']:.4g}), paired by seed, Bonferroni over the {len(others)}")
    return paired_difference(points[chosen], points[others[0]], name=name,
                             confidence=1 - (1 - FAMILY_CONFIDENCE) / len(others)), others[0]


def analyse_table(records: list[dict], grid: Setting, columns: list[Column], axis: str) -> dict:
    """`axis`: "num_train" (Table 1: columns N at one B) or "batch_size" (Table 3: columns B at one N)."""
    out = []
    for column in columns:
        exponents = sorted({r["exponent"] for r in records if r["num_train"] == column.num_train
                            and r["batch_size"] == column.batch_size})
        cells = {j: cell_stats(records, column, j, grid) for j in exponents}
        ranking = rank_column(cells, grid.marked_exponent(column))
        effect, other = best_other(cells, ranking["marked"])
        out.append({"num_train": column.num_train, "batch_size": column.batch_size, "cells": cells, **ranking,
                    "marked_weight_decay": grid.weight_decay(ranking["marked"]),
                    "best_weight_decay": grid.weight_decay(ranking["best"]) if ranking["best"] is not None else None,
                    "best_other": other, "effect": effect})
    return {"axis": axis, "columns": out, "marked_tuning_factor": grid.marked_tuning_factor,
            "best_slope": best_slope(out, axis)}


def best_slope(columns: list[dict], axis: str) -> float:
    """Least-squares slope of log2(best λ by mean) against log2 of the column's N or B: eq. 27 predicts −1 against
    N and +1 against B (the tuning factor held); a best λ that ignores N or B gives 0. Descriptive only: the
    per-column claims carry the verdicts."""
    points = [(math.log2(c[axis]), c["best"]) for c in columns if c["best"] is not None]
    if len(points) < 2:
        return math.nan
    x, y = np.array(points, dtype=float).T
    return float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else math.nan


def claims(analysis: dict) -> list[Claim]:
    """One claim per column (each its own verdict): its marked cell is the column's best, the effect its lead over
    the best other cell, paired by seed. The paper's wording (§5.1) is "the best performance or the second best
    accuracy was in the yellow cell"; the claim tested is the plainer "best", and a column flat within the seed
    noise is `inconclusive` whichever cell has the top mean."""
    label = "N" if analysis["axis"] == "num_train" else "B"
    out = []
    for column in analysis["columns"]:
        cells, marked, other = column["cells"], column["marked"], column["best_other"]
        claim = (f"The marked λ (equal tuning factor) is the best of the {label} = {column[analysis['axis']]} "
                 "column")
        numbers = (f"marked λ = {column['marked_weight_decay']:.4g}: "
                   + (cells[marked]["summary"].text(100, 4) if marked in cells else "not run")
                   + (f"; best other λ = {cells[other]['weight_decay']:.4g}: {cells[other]['summary'].text(100, 4)}"
                      if other is not None else "; no other λ run")
                   + f"; rank of the marked mean {column['marked_rank']} of {len(column['order'])}"
                   + ("; the best mean at the window's edge (the column's best λ may lie outside it)"
                      if column["best"] in (min(cells), max(cells)) and column["best"] != marked else ""))
        out.append((claim, verdict(column["effect"], "greater", comparability=SAME_SCHEDULE), numbers))
    return out


def cell_text(cell: dict | None, best: bool, marked: bool) -> str:
    if cell is None:
        return ""
    summary: Summary = cell["summary"]
    if summary.n == 0:
        return f"diverged ({cell['diverged']}/{cell['runs']})"
    text = summary.text(100, 4)
    if best:
        text = f"**{text}**"
    if cell["diverged"]:
        text += f" ({cell['diverged']}/{cell['runs']} div.)"
    return f"◆ {text}" if marked else text


def markdown(analysis: dict, grid: Setting) -> list[str]:
    """Rows: λ from the largest down, as the paper's tables; one column per (N, B); blank: not run."""
    columns = analysis["columns"]
    exponents = sorted({j for c in columns for j in c["cells"]}, reverse=True)
    label = "N" if analysis["axis"] == "num_train" else "B"
    header = "| λ | " + " | ".join(f"{label} = {c[analysis['axis']]}" for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for j in exponents:
        cells = [cell_text(c["cells"].get(j), best=j == c["best"], marked=j == c["marked"]) for c in columns]
        lines.append(f"| {grid.weight_decay(j):.4g} | " + " | ".join(cells) + " |")
    return lines
