"""Seed 004 §7.2, Tables 1 and 2 at CPU scale: does the Fisher-trace regularizer (Algorithm 1) lower the test error,
and does it lower γ̂ at the end of training?

The default setting of the scenarios (shared `default` sweep) against the same setting trained with
`--regularizer=fisher`: α = 1e-4 (the paper's), β = 20, τ = 5 (flags/seed004/fisher.cfg's point of the paper's grid,
which the paper searched by validation), M = 4 sub-batches (8 examples each at batch 32). Same seeds, so the pairs
share their training subset and initialization.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from reproduction import Claim, claim_lines, command_lines

from jia_su import setup
from tfregimes.analysis import paired_difference, same_stop_target, summarize, verdict
from tfregimes.base.run_dir import write_atomically
from tfregimes.results.table import markdown_table

FISHER = ["--regularizer=fisher", "--fisher_alpha=1e-4", "--fisher_beta=20", "--fisher_subbatches=4",
          "--clip_global_norm=5"]
LABELS = {"none": "without", "fisher": "with the regularizer"}
# column -> (claim, name of the paired effect); both claim a lower value with the regularizer.
CLAIMS = {"test_error": ("The regularizer lowers the test error (Table 1)",
                         "mean test error difference with − without (points)"),
          "fisher_logdet": ("The regularizer lowers γ̂ at the end of training (Table 2)",
                            "mean γ̂ difference with − without")}


def sweeps(size: dict, work_dir: Path) -> dict[str, list[str]]:
    return {"default": setup.sweep_argv("default", size, work_dir, []),
            "fisher": setup.sweep_argv("fisher", size, work_dir, FISHER)}


def by_seed(runs: pd.DataFrame, setting: str, column: str) -> dict[int, float]:
    """{seed: value} of one setting's runs: what paired_difference pairs on (a pair shares its training subset and
    initialization)."""
    chosen = runs[runs["regularizer"] == setting]
    return dict(zip(chosen["seed"], pd.to_numeric(chosen[column], errors="coerce")))


def claims(runs: pd.DataFrame, settings: list[dict]) -> list[Claim]:
    """Tables 1–2's claims over `runs` (the finished runs of both settings; rows of tfregimes.results.collect):
    with − without, paired by seed, each compared at the same stop target (γ̂ and the test error are of minima)."""
    compared = same_stop_target(runs)
    without, with_reg = settings
    context = (f"reached the stop: {without['reached_target']}/{without['n']} without, "
               f"{with_reg['reached_target']}/{with_reg['n']} with; clean training loss "
               f"{setup.cell(without['train_loss'], 3)} without, {setup.cell(with_reg['train_loss'], 3)} with")
    out = []
    for column, (claim, name) in CLAIMS.items():
        effect = paired_difference(by_seed(runs, "fisher", column), by_seed(runs, "none", column), name=name)
        label = "test error (%)" if column == "test_error" else "γ̂"
        out.append((claim, verdict(effect, "less", comparability=compared),
                    f"{label} {setup.cell(without[column])} without, {setup.cell(with_reg[column])} with; {context}"))
    return out


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path, log=print,
        parallel: int | None = None, train: bool = True) -> list[Claim]:
    size = setup.sizes(smoke, parallel)
    started = time.time()
    commands = sweeps(size, work_dir)
    if train:
        setup.run_sweeps(commands, log)
    df = setup.read_runs([work_dir / name for name in commands]).sort_values("run")
    settings = setup.per_setting(df, "regularizer", ["none", "fisher"])
    found = claims(setup.done_runs(df, "regularizer", ["none", "fisher"]), settings)
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "regularizer.json", json.dumps({
        "summary": settings, "claims": [{"claim": c, "numbers": n, **v.as_dict()} for c, v, n in found]}, indent=1))
    header = ["training", "n", "test error (%)", "test accuracy (%)", "train loss (clean)", "reached / epochs",
              "γ̂", "wall time per model (s)"]
    rows = []
    for s in settings:
        walls = df[df["regularizer"] == s["setting"]]["wall_seconds"]
        rows.append([LABELS[s["setting"]], str(s["n"]), setup.cell(s["test_error"]),
                     summarize(100 - v for v in s["test_error"]["values"]).text(), setup.cell(s["train_loss"], 3),
                     f"{s['reached_target']} / {','.join(str(e) for e in s['epochs'])}",
                     setup.cell(s["fisher_logdet"]), summarize(walls).text(digits=3)])
    text = "\n".join([
        "## The Fisher-trace regularizer (§7.2, Tables 1 and 2)", "",
        f"Command: `{command}`; this invocation took {(time.time() - started) / 60:.1f} min. Its sweeps:", "",
        *command_lines(s.command() for s in commands.values()), "",
        __doc__.split("\n\n", 1)[1].strip(), "", markdown_table(header, rows), "", *claim_lines(found)])
    write_atomically(output / "regularizer.md", text)
    return found
