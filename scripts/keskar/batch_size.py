"""Seed 003 Figure 4 at CPU scale: sharpness and test accuracy of the minimum against the batch size.

The batch sizes run from 64 to LB (10 % of the training set); SB and LB are the table part's runs (the same sweep,
reused: rerunning it trains nothing), the others a sweep of their own with the same flags and seeds.
Claim: as the batch grows, the minima get sharper and generalize worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.stats
from reproduction import command_lines, new_figure, save_figure

from keskar.common import (
    SHARPNESS_KEYS,
    Setting,
    describe,
    group,
    mean_std,
    pm,
    read_rows,
    start_part,
    sweep_command,
    write_part,
)

SIGNIFICANCE = 0.05


def figure4_sweep(config: Setting, work_dir: Path) -> dict[str, list[str]]:
    """Figure 4's batch sizes besides SB and LB (the shared sweep's), with the same flags and seeds."""
    batches = ",".join(str(b) for b in config.figure4_batches)
    return {"batch_size": sweep_command(config, work_dir / "batch_size", [f"--grid=batch_size={batches}"])}


def trend(rows: list[dict], value) -> dict:
    """Kendall's τ_b between the batch size and `value(row)` over the finished runs, with its p-value and n."""
    pairs = [(r["batch_size"], value(r)) for r in rows if r["state"] == "done" and value(r) is not None]
    if len(pairs) < 3:
        return {"tau": float("nan"), "p": float("nan"), "n": len(pairs)}
    result = scipy.stats.kendalltau(*zip(*pairs))
    return {"tau": float(result.statistic), "p": float(result.pvalue), "n": len(pairs)}


def analyse(rows: list[dict]) -> dict:
    batches = sorted({r["batch_size"] for r in rows})
    per_batch = {}
    for batch in batches:
        runs = group(rows, batch_size=batch)
        per_batch[batch] = {"runs": len(runs), "reached": sum(bool(r["reached_target"]) for r in runs),
                            "test_accuracy": mean_std(r["test_accuracy"] for r in runs),
                            "train_accuracy": mean_std(r["train_accuracy"] for r in runs),
                            "epochs_run": mean_std(r["epochs_run"] for r in runs),
                            "sharpness": {key: mean_std(r["sharpness"].get(key) for r in runs)
                                          for key in SHARPNESS_KEYS}}
    return {"batches": batches, "per_batch": per_batch,
            "trend": {"test_accuracy": trend(rows, lambda r: r["test_accuracy"]),
                      **{key: trend(rows, lambda r, k=key: r["sharpness"].get(k)) for key in SHARPNESS_KEYS}}}


def _direction(result: dict, sign: int) -> str:
    if not np.isfinite(result["tau"]) or result["tau"] * sign <= 0:
        return "wrong"
    return "significant" if result["p"] < SIGNIFICANCE else "right"


def verdicts(analysis: dict) -> list[tuple[str, str, str]]:
    trends = analysis["trend"]
    directions = [_direction(trends[key], +1) for key in SHARPNESS_KEYS] + [_direction(trends["test_accuracy"], -1)]
    verdict = ("holds" if all(d == "significant" for d in directions)
               else "does not hold" if all(d == "wrong" for d in directions) else "partly")
    # Figure 4 compares minima at the same training accuracy; a batch size whose runs stopped short of the target
    # is compared at another point of training, so the trend can then hold only partly.
    short = [b for b in analysis["batches"]
             if analysis["per_batch"][b]["reached"] < analysis["per_batch"][b]["runs"]]
    verdict = "partly" if short and verdict == "holds" else verdict
    numbers = "; ".join(f"{key}: τ = {trends[key]['tau']:+.2f} (p = {trends[key]['p']:.2g})" for key in SHARPNESS_KEYS)
    accuracy = trends["test_accuracy"]
    per_batch = ", ".join(f"{b}: {100 * analysis['per_batch'][b]['test_accuracy'][0]:.2f} %"
                          for b in analysis["batches"])
    return [("Larger batches reach sharper minima that generalize worse (Figure 4)", verdict,
             f"Kendall τ against the batch size over {accuracy['n']} runs: sharpness {numbers}; test accuracy "
             f"τ = {accuracy['tau']:+.2f} (p = {accuracy['p']:.2g}), mean per batch {per_batch}"
             + (f"; short of the target training accuracy: batch {', '.join(map(str, short))} ("
                + ", ".join(f"{analysis['per_batch'][b]['reached']}/{analysis['per_batch'][b]['runs']} reached"
                            for b in short) + ")" if short else ""))]


def plot(analysis: dict, path: Path) -> None:
    batches = analysis["batches"]
    fig, axes = new_figure(1, 2, figsize=(12, 4.2))
    for key in SHARPNESS_KEYS:
        means, stds = zip(*(analysis["per_batch"][b]["sharpness"][key] for b in batches))
        axes[0].errorbar(batches, means, yerr=stds, marker="o", capsize=3, label=key)
    axes[0].set(xscale="log", yscale="log", xlabel="batch size", ylabel="ε-sharpness φ (%)",
                title="Sharpness of the minimum vs batch size (seed 003 Fig. 4)")
    means, stds = zip(*(analysis["per_batch"][b]["test_accuracy"] for b in batches))
    axes[1].errorbar(batches, 100 * np.array(means), yerr=100 * np.array(stds), marker="o", capsize=3,
                     color="tab:red")
    axes[1].set(xscale="log", xlabel="batch size", ylabel="test accuracy (%)",
                title="Test accuracy at the target training accuracy")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.set_xticks(batches, [str(b) for b in batches])
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[tuple[str, str, str]]:
    started, config, commands = start_part("batch_size", smoke=smoke, seed=seed, work_dir=work_dir, train=train,
                                           own_sweeps=figure4_sweep)
    rows = [r for name in commands for r in read_rows(work_dir / name)]
    analysis = analyse(rows)
    table = ["| batch size | runs (reached target) | epochs run | train acc. (%) | test acc. (%) | "
             + " | ".join(f"φ {key}" for key in SHARPNESS_KEYS) + " |", "|---" * (5 + len(SHARPNESS_KEYS)) + "|"]
    for batch in analysis["batches"]:
        b = analysis["per_batch"][batch]
        table.append(f"| {batch} | {b['runs']} ({b['reached']}) | {pm(b['epochs_run'], digits=1)} | "
                     f"{pm(b['train_accuracy'], 100)} | {pm(b['test_accuracy'], 100)} | "
                     + " | ".join(pm(b["sharpness"][key]) for key in SHARPNESS_KEYS) + " |")

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## Sharpness and test accuracy against the batch size (Figure 4)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 shared CPU cores. {len(rows)} runs "
            f"({sum(r['wall_seconds'] or 0 for r in rows) / 60:.1f} min of training wall time in all). It ran (the "
            "first is the table part's sweep, reused):", "",
            *command_lines(commands.values()), "",
            describe(config), "", *table, ""]

    return write_part(output, "batch_size", started=started, command=command, train=train, analysis=analysis,
                      runs=rows, claims=verdicts(analysis), plot=lambda path: plot(analysis, path),
                      figure=("batch_size.png", "sharpness and accuracy vs batch size"), section=section)
