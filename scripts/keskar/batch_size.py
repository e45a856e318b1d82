"""Seed 003 Figure 4 at CPU scale: sharpness and test accuracy of the minimum against the batch size.

The batch sizes run from 64 to LB (10 % of the training set); SB and LB are the table part's runs (the same sweep,
reused: rerunning it trains nothing), the others a sweep of their own with the same flags and seeds.
Claim: as the batch grows, the minima get sharper and generalize worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from reproduction import Claim, command_lines, new_figure, save_figure
from sweeps import Sweep

from keskar.common import (
    SHARPNESS_KEYS,
    Setting,
    describe,
    group,
    read_rows,
    start_part,
    stopped_alike,
    sweep,
    write_part,
)
from tfregimes.analysis import kendall_tau, summarize, verdict


def figure4_sweep(config: Setting, work_dir: Path) -> dict[str, Sweep]:
    """Figure 4's batch sizes besides SB and LB (the shared sweep's), with the same flags and seeds."""
    batches = ",".join(str(b) for b in config.figure4_batches)
    return {"batch_size": sweep(config, work_dir / "batch_size", grid=(f"batch_size={batches}",))}


def analyse(rows: list[dict]) -> dict:
    """Per batch size: how many runs finished and reached the target, and a Summary of each number the table shows."""
    batches = sorted({r["batch_size"] for r in rows})
    per_batch = {}
    for batch in batches:
        runs = group(rows, batch_size=batch)
        per_batch[batch] = {"runs": len(runs), "reached": sum(bool(r["reached_target"]) for r in runs),
                            "test_accuracy": summarize(r["test_accuracy"] for r in runs),
                            "train_accuracy": summarize(r["train_accuracy"] for r in runs),
                            "epochs_run": summarize(r["epochs_run"] for r in runs),
                            "sharpness": {key: summarize(r["sharpness"].get(key) for r in runs)
                                          for key in SHARPNESS_KEYS}}
    return {"batches": batches, "per_batch": per_batch}


def claims(rows: list[dict]) -> list[Claim]:
    """Figure 4 as one claim per quantity: Kendall's τ_b of the batch size against it over the finished runs, each
    minimum compared at the same stop target."""
    done = group(rows)
    analysis = analyse(done)
    compared = stopped_alike(done)
    batches = [r["batch_size"] for r in done]
    short = [f"{b} ({analysis['per_batch'][b]['reached']}/{analysis['per_batch'][b]['runs']} reached)"
             for b in analysis["batches"] if analysis["per_batch"][b]["reached"] < analysis["per_batch"][b]["runs"]]
    note = f"; short of the target training accuracy: batch {', '.join(short)}" if short else ""
    out = []
    for key in SHARPNESS_KEYS:
        tau = kendall_tau(batches, [r["sharpness"].get(key) for r in done], name=f"τ_b(batch size, φ {key})")
        out.append((f"Larger batches reach sharper minima: φ {key} (Figure 4)",
                    verdict(tau, "greater", comparability=compared),
                    f"φ {key} per batch: " + ", ".join(f"{b}: {analysis['per_batch'][b]['sharpness'][key].text()}"
                                                        for b in analysis["batches"]) + note))
    tau = kendall_tau(batches, [r["test_accuracy"] for r in done], name="τ_b(batch size, test accuracy)")
    out.append(("Larger batches reach minima that generalize worse: the test accuracy falls (Figure 4)",
                verdict(tau, "less", comparability=compared),
                "test accuracy (%) per batch: " + ", ".join(
                    f"{b}: {analysis['per_batch'][b]['test_accuracy'].text(100)}" for b in analysis["batches"])
                + note))
    return out


def plot(analysis: dict, path: Path) -> None:
    batches = analysis["batches"]
    fig, axes = new_figure(1, 2, figsize=(12, 4.2))
    for key in SHARPNESS_KEYS:
        values = [analysis["per_batch"][b]["sharpness"][key] for b in batches]
        axes[0].errorbar(batches, [v.mean for v in values], yerr=np.nan_to_num([v.std for v in values]), marker="o",
                         capsize=3, label=key)
    axes[0].set(xscale="log", yscale="log", xlabel="batch size", ylabel="ε-sharpness φ (%)",
                title="Sharpness of the minimum vs batch size (seed 003 Fig. 4)")
    values = [analysis["per_batch"][b]["test_accuracy"] for b in batches]
    axes[1].errorbar(batches, [100 * v.mean for v in values], yerr=100 * np.nan_to_num([v.std for v in values]),
                     marker="o", capsize=3, color="tab:red")
    axes[1].set(xscale="log", xlabel="batch size", ylabel="test accuracy (%)",
                title="Test accuracy at the target training accuracy")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.set_xticks(batches, [str(b) for b in batches])
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[Claim]:
    started, config, commands = start_part("batch_size", smoke=smoke, seed=seed, work_dir=work_dir, train=train,
                                           own_sweeps=figure4_sweep)
    rows = [r for name in commands for r in read_rows(work_dir / name)]
    analysis = analyse(rows)
    table = ["| batch size | runs (reached target) | epochs run | train acc. (%) | test acc. (%) | "
             + " | ".join(f"φ {key}" for key in SHARPNESS_KEYS) + " |", "|---" * (5 + len(SHARPNESS_KEYS)) + "|"]
    for batch in analysis["batches"]:
        b = analysis["per_batch"][batch]
        table.append(f"| {batch} | {b['runs']} ({b['reached']}) | {b['epochs_run'].text(digits=3)} | "
                     f"{b['train_accuracy'].text(100)} | {b['test_accuracy'].text(100)} | "
                     + " | ".join(b["sharpness"][key].text() for key in SHARPNESS_KEYS) + " |")

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## Sharpness and test accuracy against the batch size (Figure 4)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 shared CPU cores. {len(rows)} runs "
            f"({sum(r['wall_seconds'] or 0 for r in rows) / 60:.1f} min of training wall time in all). It ran (the "
            "first is the table part's sweep, reused):", "",
            *command_lines(s.command() for s in commands.values()), "",
            describe(config), "", *table, ""]

    return write_part(output, "batch_size", started=started, command=command, train=train, analysis=analysis,
                      runs=rows, claims=claims(rows), plot=lambda path: plot(analysis, path),
                      figure=("batch_size.png", "sharpness and accuracy vs batch size"), section=section)
