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

import numpy as np
from reproduction import claim_lines, command_lines

from jia_su import setup
from tfregimes.base.run_dir import write_atomically
from tfregimes.results.table import markdown_table

FISHER = ["--regularizer=fisher", "--fisher_alpha=1e-4", "--fisher_beta=20", "--fisher_subbatches=4",
          "--clip_global_norm=5"]
LABELS = {"none": "without", "fisher": "with the regularizer"}
CLAIMS = {"error": "The regularizer lowers the test error (Table 1)",
          "gamma": "The regularizer lowers γ̂ at the end of training (Table 2)",
          "loss": "Both reach minima of similar training loss (Table 2 compares such minima)"}
NOT_MEASURED = "not measured"


def sweeps(size: dict, work_dir: Path) -> dict[str, list[str]]:
    return {"default": setup.sweep_argv("default", size, work_dir, []),
            "fisher": setup.sweep_argv("fisher", size, work_dir, FISHER)}


def paired(summary: list[dict], column: str) -> dict:
    """Mean and std of (with − without) over the seeds both have: each pair shares its training subset and
    initialization."""
    without, with_reg = (dict(zip(s[column]["seeds"], s[column]["values"])) for s in summary)
    seeds = sorted(set(without) & set(with_reg))
    n = len(seeds)
    diff = np.array([with_reg[seed] - without[seed] for seed in seeds])
    return {"values": diff.tolist(), "mean": float(diff.mean()) if n else float("nan"),
            "std": float(diff.std(ddof=1)) if n > 1 else 0.0, "n": n}


def verdicts(summary: list[dict], differences: dict) -> list[tuple[str, str, str]]:
    without, with_reg = summary
    error, gamma = differences["test_error"], differences["fisher_logdet"]
    if not error["n"]:
        return [(claim, NOT_MEASURED, "no seed has finished both runs")
                for claim in (CLAIMS["error"], CLAIMS["gamma"], CLAIMS["loss"])]
    out = []
    lower_error = error["mean"] < 0
    clear = lower_error and error["mean"] + error["std"] < 0
    out.append((CLAIMS["error"],
                "holds" if clear else ("partly" if lower_error else "does not hold"),
                f"test error {without['test_error']['mean']:.2f} ± {without['test_error']['std']:.2f} % without, "
                f"{with_reg['test_error']['mean']:.2f} ± {with_reg['test_error']['std']:.2f} % with; paired "
                f"difference {error['mean']:+.2f} ± {error['std']:.2f} points over {error['n']} seeds"))
    lower_gamma = gamma["mean"] < 0
    out.append((CLAIMS["gamma"],
                "holds" if lower_gamma and gamma["mean"] + gamma["std"] < 0 else
                ("partly" if lower_gamma else "does not hold"),
                f"γ̂ {without['fisher_logdet']['mean']:.1f} ± {without['fisher_logdet']['std']:.1f} without, "
                f"{with_reg['fisher_logdet']['mean']:.1f} ± {with_reg['fisher_logdet']['std']:.1f} with; paired "
                f"difference {gamma['mean']:+.1f} ± {gamma['std']:.1f}"))
    losses = [v for s in summary for v in s["train_loss"]["values"]]
    out.append((CLAIMS["loss"],
                "holds" if without["reached_target"] == without["n"] and with_reg["reached_target"] == with_reg["n"]
                else "partly",
                f"reached the 99.9 % stop: {without['reached_target']}/{without['n']} without, "
                f"{with_reg['reached_target']}/{with_reg['n']} with; clean training loss "
                f"{without['train_loss']['mean']:.4f} without, {with_reg['train_loss']['mean']:.4f} with "
                f"(range {min(losses, default=np.nan):.4f}–{max(losses, default=np.nan):.4f})"))
    return out


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path, log=print,
        parallel: int | None = None, train: bool = True) -> list[tuple[str, str, str]]:
    size = setup.sizes(smoke, parallel)
    started = time.time()
    commands = sweeps(size, work_dir)
    if train:
        setup.run_sweeps(commands, log)
    df = setup.read_runs([work_dir / name for name in commands]).sort_values("run")
    summary = setup.summarize(df, "regularizer", ["none", "fisher"])
    differences = {column: paired(summary, column) for column in ("test_error", "fisher_logdet")}
    found = verdicts(summary, differences)
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "regularizer.json", json.dumps({"summary": summary, "differences": differences,
                                                               "verdicts": found}, indent=1))
    header = ["training", "n", "test error (%)", "test accuracy (%)", "train loss (clean)", "reached / epochs",
              "γ̂", "wall time per model (s)"]
    rows = []
    for s in summary:
        walls = df[df["regularizer"] == s["setting"]]["wall_seconds"]
        rows.append([LABELS[s["setting"]], str(s["n"]),
                     f"{s['test_error']['mean']:.2f} ± {s['test_error']['std']:.2f}",
                     f"{100 - s['test_error']['mean']:.2f}", f"{s['train_loss']['mean']:.4f}",
                     f"{s['reached_target']} / {','.join(str(e) for e in s['epochs'])}",
                     f"{s['fisher_logdet']['mean']:.1f} ± {s['fisher_logdet']['std']:.1f}",
                     f"{float(walls.mean()):.0f}" if len(walls) else "—"])
    text = "\n".join([
        "## The Fisher-trace regularizer (§7.2, Tables 1 and 2)", "",
        f"Command: `{command}`; this invocation took {(time.time() - started) / 60:.1f} min. Its sweeps:", "",
        *command_lines(commands.values()), "",
        __doc__.split("\n\n", 1)[1].strip(), "", markdown_table(header, rows), "", *claim_lines(found)])
    write_atomically(output / "regularizer.md", text)
    return found
