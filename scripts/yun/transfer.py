"""Seed 002 §6 at CPU scale: search λ on a subset of N/8 examples, carry it to N with the tuning factor (λ·N held,
eq. 27: λ_N = λ_{N/8} / 8), and compare with the best λ searched on all N examples.

The paper does this for EfficientNet-B0 on ImageNet (80k of 1.28M, ratio 16; the transferred λ = 1e-4 was the
second best, the best 5e-5). Here both searches are the `sizes` part's smallest and largest columns (ratio 8), so
this part trains nothing that part does not; it reads them with `tfregimes.results.collect`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from reproduction import Claim, claim_lines

from tfregimes.analysis import verdict
from tfregimes.base.run_dir import write_atomically
from yun.setting import Column, Setting, dumps, read_column, run_column, setting
from yun.tables import SAME_SCHEDULE, best_other, cell_stats, rank_column


def search(records: list[dict], grid: Setting, column: Column) -> dict:
    exponents = sorted({r["exponent"] for r in records if r["num_train"] == column.num_train})
    cells = {j: cell_stats(records, column, j, grid) for j in exponents}
    return {"cells": cells, **rank_column(cells, grid.marked_exponent(column)),
            "wall_seconds": sum(r["wall_seconds"] for r in records if r["num_train"] == column.num_train)}


def analyse_transfer(records: list[dict], grid: Setting) -> dict:
    """The best λ on the subset (by mean: what a search picks), carried to N, and its effect: its accuracy on N
    minus that of the best other λ on N, paired by seed (`tables.best_other`)."""
    small, full = Column(min(grid.sizes), grid.base_batch_size), Column(max(grid.sizes), grid.base_batch_size)
    steps = math.log2(full.num_train / small.num_train)
    if steps != round(steps):
        raise ValueError(f"N/n = {full.num_train}/{small.num_train} must be a power of two")
    on_small, on_full = search(records, grid, small), search(records, grid, full)
    transferred = on_small["best"] - int(steps) if on_small["best"] is not None else None
    effect, other = best_other(on_full["cells"], transferred)
    return {"small": small.num_train, "full": full.num_train, "on_small": on_small, "on_full": on_full,
            "transferred": transferred, "best_other": other, "effect": effect,
            "transferred_rank": on_full["order"].index(transferred) + 1 if transferred in on_full["order"] else None,
            "small_best_at_edge": on_small["best"] is not None
            and on_small["best"] in (min(on_small["cells"]), max(on_small["cells"]))}


def claims(a: dict, grid: Setting) -> list[Claim]:
    """§6: "we can find near optimal hyperparameters" (the paper's transferred λ came second on the full set). The
    claim tested is that the transferred λ is the best on N: `inconclusive` when the seeds cannot tell it from the
    best other λ, `contradicts` when another λ is better beyond the seed noise."""
    on_small, on_full = a["on_small"], a["on_full"]

    def cell(search: dict, j: int | None) -> str:
        if j is None or j not in search["cells"]:
            return "none" if j is None else f"{grid.weight_decay(j):.4g} (not run)"
        return f"{grid.weight_decay(j):.4g} ({search['cells'][j]['summary'].text(100, 4)})"
    numbers = (f"best λ by mean on N = {a['small']}: {cell(on_small, on_small['best'])} → transferred λ for "
               f"N = {a['full']}: {cell(on_full, a['transferred'])}, rank {a['transferred_rank']} of "
               f"{len(on_full['order'])} by mean; best other λ on N = {a['full']}: {cell(on_full, a['best_other'])}"
               + ("; the best on the subset is at the edge of its window (its best λ may lie beyond)"
                  if a["small_best_at_edge"] else "")
               + f"; the search on N/{a['full'] // a['small']} cost {on_small['wall_seconds'] / 60:.1f} min of wall "
               f"time against {on_full['wall_seconds'] / 60:.1f} min on N")
    return [(f"The best λ on N/{a['full'] // a['small']} examples, carried to N by the tuning factor, is the best "
             "λ on N (§6)", verdict(a["effect"], "greater", comparability=SAME_SCHEDULE), numbers)]


def markdown(a: dict, grid: Setting) -> list[str]:
    """The two searches side by side: λ from the largest down, mean ± std per cell; blank: not run."""
    searches = (a["on_small"], a["on_full"])

    def text(cell: dict | None) -> str:
        if cell is None:
            return ""
        return f"diverged ({cell['diverged']}/{cell['runs']})" if cell["summary"].n == 0 else \
            cell["summary"].text(100, 4)
    rows = [f"| λ | N = {a['small']} | N = {a['full']} |", "|---|---|---|"]
    for j in sorted({j for search in searches for j in search["cells"]}, reverse=True):
        rows.append(f"| {grid.weight_decay(j):.4g} | " + " | ".join(text(s["cells"].get(j)) for s in searches)
                    + " |")
    return rows


def run(output: Path, *, smoke: bool, command: str, work_dir: Path, max_parallel: int,
        train: bool = True) -> list[Claim]:
    started = time.time()
    grid = setting(smoke)
    cols = [Column(min(grid.sizes), grid.base_batch_size), Column(max(grid.sizes), grid.base_batch_size)]
    for column in cols if train else ():  # Finished sweeps of the `sizes` part are read back, not rerun.
        run_column(grid, column, work_dir, max_parallel, "transfer")
    records = [r for column in cols for r in read_column(grid, column, work_dir)]
    analysis = analyse_transfer(records, grid)
    found = claims(analysis, grid)
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "transfer.json", dumps({"analysis": analysis}))
    text = "\n".join([
        "## Efficient search: λ found on N/8, transferred to N (§6)", "",
        f"Command: `{command}`; this invocation took {(time.time() - started) / 60:.1f} min (it reads the `sizes` "
        "part's columns, training only what is missing).", "",
        f"Test accuracy (%) of the two searches (the `sizes` table's columns N = {analysis['small']} and "
        f"N = {analysis['full']}):", "", *markdown(analysis, grid), "", *claim_lines(found)])
    write_atomically(output / "transfer.md", text)
    return found
