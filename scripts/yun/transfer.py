"""Seed 002 §6 at CPU scale: search λ on a subset of N/8 examples, carry it to N with the tuning factor (λ·N held,
eq. 27: λ_N = λ_{N/8} / 8), and compare with the best λ searched on all N examples.

The paper does this for EfficientNet-B0 on ImageNet (80k of 1.28M, ratio 16; the transferred λ = 1e-4 was the
second best, the best 5e-5). Here both searches are the `sizes` part's smallest and largest columns (ratio 8), so
this part trains nothing that part does not; it reads them with `tfregimes.results.collect`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from reproduction import claim_lines

from tfregimes.base.run_dir import write_atomically
from yun.setting import Column, Setting, read_column, run_column, setting
from yun.tables import cell_stats, rank_column


def search(records: list[dict], grid: Setting, column: Column) -> dict:
    exponents = sorted({r["exponent"] for r in records if r["num_train"] == column.num_train})
    cells = {j: cell_stats(records, column, j) for j in exponents}
    return {"cells": cells, **rank_column(cells, grid.marked_exponent(column)),
            "wall_seconds": sum(r["wall_seconds"] for r in records if r["num_train"] == column.num_train)}


def analyse_transfer(records: list[dict], grid: Setting) -> dict:
    small, full = Column(min(grid.sizes), grid.base_batch_size), Column(max(grid.sizes), grid.base_batch_size)
    steps = math.log2(full.num_train / small.num_train)
    if steps != round(steps):
        raise ValueError(f"N/n = {full.num_train}/{small.num_train} must be a power of two")
    on_small, on_full = search(records, grid, small), search(records, grid, full)
    transferred = on_small["best"] - int(steps) if on_small["best"] is not None else None
    best = on_full["best"]
    cell = on_full["cells"].get(transferred)
    best_cell = on_full["cells"].get(best)
    return {"small": small.num_train, "full": full.num_train,
            "best_small": grid.weight_decay(on_small["best"]) if on_small["best"] is not None else None,
            "transferred": grid.weight_decay(transferred) if transferred is not None else None,
            "best_full": grid.weight_decay(best) if best is not None else None,
            "transferred_rank": on_full["order"].index(transferred) + 1 if transferred in on_full["order"] else None,
            "steps_from_best": abs(transferred - best) if transferred is not None and best is not None else None,
            "transferred_accuracy": cell["mean"] if cell else math.nan,
            "best_accuracy": best_cell["mean"] if best_cell else math.nan,
            "best_std": best_cell["std"] if best_cell else math.nan,
            "rows_full": len(on_full["order"]),
            "small_best_at_edge": on_small["best"] in (min(on_small["cells"]), max(on_small["cells"])),
            "full_span": (max(c["mean"] for c in on_full["cells"].values() if math.isfinite(c["mean"]))
                          - min(c["mean"] for c in on_full["cells"].values() if math.isfinite(c["mean"])))
            if on_full["order"] else math.nan,
            "accuracy_small": {f"{grid.weight_decay(j):.4g}": c["mean"] for j, c in on_small["cells"].items()},
            "accuracy_full": {f"{grid.weight_decay(j):.4g}": c["mean"] for j, c in on_full["cells"].items()},
            "wall_seconds_small": on_small["wall_seconds"], "wall_seconds_full": on_full["wall_seconds"]}


def verdicts(a: dict) -> list[tuple[str, str, str]]:
    gap = a["best_accuracy"] - a["transferred_accuracy"]
    noise = a["best_std"] if math.isfinite(a["best_std"]) else 0.0
    rank = a["transferred_rank"]
    verdict = ("holds" if rank == 1 or (math.isfinite(gap) and gap <= noise) else
               "partly" if rank == 2 else "does not hold")

    def fmt(value):
        return "none" if value is None else f"{value:.4g}"
    return [(f"The best λ on N/{a['full'] // a['small']} examples, carried to N by the tuning factor, is (near) the "
             "best λ on N (§6)", verdict,
             f"best λ on N = {a['small']}: {fmt(a['best_small'])} → transferred λ = {fmt(a['transferred'])} for "
             f"N = {a['full']}, rank {rank} of {a['rows_full']} there ({100 * a['transferred_accuracy']:.2f} %); "
             f"best λ on N = {a['full']}: {fmt(a['best_full'])} ({100 * a['best_accuracy']:.2f} % ± "
             f"{100 * noise:.2f} over seeds), {a['steps_from_best']} ×2 step(s) away, accuracy "
             f"{100 * gap:.2f} points lower, while the means on N = {a['full']} span {100 * a['full_span']:.2f} "
             "points" + ("; the best on the subset is at the edge of its window (its best λ may lie beyond)"
                         if a["small_best_at_edge"] else "")
             + f"; the search on N/8 cost {a['wall_seconds_small'] / 60:.1f} min of wall time against "
             f"{a['wall_seconds_full'] / 60:.1f} min on N")]


def run(output: Path, *, smoke: bool, command: str, work_dir: Path, max_parallel: int,
        train: bool = True) -> list[tuple[str, str, str]]:
    started = time.time()
    grid = setting(smoke)
    cols = [Column(min(grid.sizes), grid.base_batch_size), Column(max(grid.sizes), grid.base_batch_size)]
    for column in cols if train else ():  # Finished sweeps of the `sizes` part are read back, not rerun.
        run_column(grid, column, work_dir, max_parallel, "transfer")
    records = [r for column in cols for r in read_column(grid, column, work_dir)]
    analysis = analyse_transfer(records, grid)
    claims = verdicts(analysis)
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "transfer.json", json.dumps({"analysis": analysis}))
    rows = ["| λ | " + f"N = {analysis['small']} | N = {analysis['full']} |", "|---|---|---|"]
    decays = sorted({*analysis["accuracy_small"], *analysis["accuracy_full"]}, key=float, reverse=True)
    for lam in decays:
        cells = [analysis[key].get(lam) for key in ("accuracy_small", "accuracy_full")]
        rows.append(f"| {lam} | " + " | ".join("" if c is None else "diverged" if not math.isfinite(c)
                                                else f"{100 * c:.2f}" for c in cells) + " |")
    text = "\n".join([
        "## Efficient search: λ found on N/8, transferred to N (§6)", "",
        f"Command: `{command}`; this invocation took {(time.time() - started) / 60:.1f} min (it reads the `sizes` "
        "part's columns, training only what is missing).", "",
        f"Mean test accuracy (%) of the two searches (the `sizes` table's columns N = {analysis['small']} and "
        f"N = {analysis['full']}):", "", *rows, "", *claim_lines(claims)])
    write_atomically(output / "transfer.md", text)
    return claims
