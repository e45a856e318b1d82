"""The parts `sizes` (seed 002 Table 1 and Figure 3: columns N at one batch size) and `batch` (Table 3 and
Figure 4: columns B at the largest N), each a table of test accuracies with its marked cells and the angular
update of those cells, written as `<part>.md`, `<part>.json` and `<part>.png`."""

from __future__ import annotations

import time
from pathlib import Path

from reproduction import Claim, claim_lines

from tfregimes.base.run_dir import write_atomically
from yun import angular, tables
from yun.setting import Column, Setting, dumps, read_column, run_column, setting

PARTS = {
    "sizes": {"axis": "num_train", "label": "N",
              "title": "Table 1: tuning λ for several training-set sizes N (§5.1, Table 1b; Figure 3)"},
    "batch": {"axis": "batch_size", "label": "B",
              "title": "Table 3: tuning λ for several batch sizes B (§5.1, Table 3b; Figure 4)"},
}


def columns(grid: Setting, part: str) -> list[Column]:
    if part == "sizes":
        return [Column(n, grid.base_batch_size) for n in grid.sizes]
    return [Column(max(grid.sizes), b) for b in grid.batch_sizes]


def describe(grid: Setting, part: str) -> str:
    fixed = (f"B = {grid.base_batch_size}" if part == "sizes" else f"N = {max(grid.sizes)}")
    return (f"`scale_invariant_resnet_tiny` with the ImageNet stem on Fashion-MNIST training subsets of N examples "
            f"(test: the full 10,000-image test split), {fixed}, ghost batch {grid.ghost_batch_size}, SGD "
            f"η = {grid.learning_rate}, μ = {grid.momentum}, coupled weight decay λ on every weight, {grid.epochs} "
            f"epochs with η ÷10 at 50 % and 75 %, no augmentation, seeds {list(grid.seeds)}. ◆: the marked cells, "
            f"tuning factor Nηλ/(B(1 − μ)) = {grid.marked_tuning_factor:.4g} (eq. 27; the paper's yellow cells); "
            "**bold**: the column's best mean (whether the seeds tell it from the marked cell is the claims' business "
            "below); mean ± sample std (n: the runs that did not diverge, the paper's rule, §5.1); blank: not run "
            "(each column runs the marked λ and two ×2 steps either side).")


def write_section(part: str, grid: Setting, analysis: dict, records: list[dict], output: Path, seconds: float,
                  command: str) -> list[Claim]:
    spec = PARTS[part]
    label = spec["label"]
    claims = [*tables.claims(analysis["table"]), *angular.claims(analysis["angular"], label)]
    angular.plot(analysis["angular"], output / f"{part}.png",
                 f"Angular update per epoch of the marked cells ({label} varies)", label)
    write_atomically(output / f"{part}.json", dumps({"analysis": analysis, "runs": records}))
    diverged = sum(r["diverged"] for r in records)
    planned = len(analysis["table"]["columns"]) * len(grid.offsets) * len(grid.seeds)
    unfinished = (f" Only {len(records)} of the {planned} planned runs had finished when the page was written: the "
                  "cells count the runs they have." if len(records) < planned else "")
    text = "\n".join([
        f"## {spec['title']}", "",
        f"Command: `{command}`. The {len(records)} runs took {sum(r['wall_seconds'] for r in records) / 60:.1f} min "
        f"of wall time in all (the sum of their `wall_seconds`, 2 CPU cores shared with other work; runs of other "
        f"parts reused, not rerun); this invocation took {seconds / 60:.1f} min. {diverged} run(s) diverged."
        + unfinished, "",
        describe(grid, part), "", "Test accuracy (%):", "", *tables.markdown(analysis["table"], grid), "",
        best_line(analysis["table"], label), "",
        f"![angular update per epoch, {part}]({part}.png)", "", *claim_lines(claims)])
    write_atomically(output / f"{part}.md", text)
    return claims


def best_line(table: dict, label: str) -> str:
    """The best λ by mean per column and how it moves with N or B: a description; the claims give the verdicts."""
    predicted = "−1" if label == "N" else "+1"
    return ("Best λ by mean: " + ", ".join(f"{label} = {c[table['axis']]}: "
                                           + ("none" if c["best_weight_decay"] is None else
                                              f"{c['best_weight_decay']:.4g}") for c in table["columns"])
            + f"; least-squares slope of log2(best λ) on log2 {label}: {table['best_slope']:.2f} (eq. 27: "
            f"{predicted}; a λ that ignores {label}: 0). A description of the means, not a verdict: the best mean of "
            "a column flat within the seed noise may be any of its cells.")


def run_part(part: str, output: Path, *, smoke: bool, command: str, work_dir: Path, max_parallel: int,
             train: bool = True) -> list[Claim]:
    started = time.time()
    grid = setting(smoke)
    cols = columns(grid, part)
    for column in cols if train else ():
        run_column(grid, column, work_dir, max_parallel, part)
    records = [r for column in cols for r in read_column(grid, column, work_dir)]
    analysis = {"table": tables.analyse_table(records, grid, cols, PARTS[part]["axis"]),
                "angular": angular.analyse_angular(records, grid, cols)}
    output.mkdir(parents=True, exist_ok=True)
    return write_section(part, grid, analysis, records, output, time.time() - started, command)
