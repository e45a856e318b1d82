"""Seed 003 Figure 4: sharpness and test accuracy of the minimum against the batch size.

The batch sizes run from SB to LB (10 % of the training set); SB and LB are the table part's runs (the same sweep,
reused: rerunning it trains nothing), the others a sweep of their own with the same flags and fewer seeds (the
setting's figure4_seeds, for time). Every run stops at the same clean training loss; a batch size any of whose runs
did not reach it is shown apart (hollow markers) and left out of the trend.
Claim: as the batch grows, the minima get sharper and generalize worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import NullLocator
from reproduction import Claim, command_lines
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
from tfregimes.report import style


def figure4_sweep(config: Setting, work_dir: Path) -> dict[str, Sweep]:
    """Figure 4's batch sizes besides SB and LB (the shared sweep's), with the same flags, on figure4_seeds; none
    when the setting has no other batch size (the smoke's)."""
    if not config.figure4_batches:
        return {}
    batches = ",".join(str(b) for b in config.figure4_batches)
    return {"batch_size": sweep(config, work_dir / "batch_size", grid=(f"batch_size={batches}",),
                                seeds=config.figure4_seeds)}


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
    reached = [b for b in batches if per_batch[b]["runs"] and per_batch[b]["reached"] == per_batch[b]["runs"]]
    return {"batches": batches, "per_batch": per_batch, "in_trend": reached}


def claims(rows: list[dict]) -> list[Claim]:
    """Figure 4 as one claim per quantity: Kendall's τ_b of the batch size against it over the finished runs of the
    batch sizes all of whose runs reached the target (the others are left out of the trend, and the numbers say
    which), each minimum compared at the same stop target."""
    done = group(rows)
    analysis = analyse(done)
    trend = [r for r in done if r["batch_size"] in analysis["in_trend"]]
    compared = stopped_alike(trend)
    batches = [r["batch_size"] for r in trend]
    short = [f"{b} ({analysis['per_batch'][b]['reached']}/{analysis['per_batch'][b]['runs']} reached)"
             for b in analysis["batches"] if b not in analysis["in_trend"]]
    note = f"; short of the target, left out of the trend: batch {', '.join(short)}" if short else ""
    out = []
    for key in SHARPNESS_KEYS:
        tau = kendall_tau(batches, [r["sharpness"].get(key) for r in trend], name=f"τ_b(batch size, φ {key})")
        out.append((f"Larger batches reach sharper minima: φ {key} (Figure 4)",
                    verdict(tau, "greater", comparability=compared),
                    f"φ {key} per batch: " + ", ".join(f"{b}: {analysis['per_batch'][b]['sharpness'][key].text()}"
                                                        for b in analysis["batches"]) + note))
    tau = kendall_tau(batches, [r["test_accuracy"] for r in trend], name="τ_b(batch size, test accuracy)")
    out.append(("Larger batches reach minima that generalize worse: the test accuracy falls (Figure 4)",
                verdict(tau, "less", comparability=compared),
                "test accuracy (%) per batch: " + ", ".join(
                    f"{b}: {analysis['per_batch'][b]['test_accuracy'].text(100)}" for b in analysis["batches"])
                + note))
    return out


def plot(analysis: dict, path: Path) -> None:
    """Mean ± std per batch size; batch sizes short of the target are drawn hollow, apart from the trend's line."""
    batches, trend = analysis["batches"], analysis["in_trend"]
    fig, axes = style.new_figure(2, "Sharpness and test accuracy vs batch size (seed 003 Fig. 4)", width=6,
                                 height=4.2)

    def draw(axis, value, scale, color, label):  # `value`: a batch's Summary, from its analysis entry.
        for chosen, filled in ((trend, True), ([b for b in batches if b not in trend], False)):
            if not chosen:
                continue
            values = [value(analysis["per_batch"][b]) for b in chosen]
            axis.errorbar(chosen, [scale * v.mean for v in values], yerr=scale * np.nan_to_num([v.std for v in values]),
                          marker="o", capsize=3, color=color, linestyle="-" if filled else "none",
                          markerfacecolor=color if filled else "white",
                          label=label if filled else ("short of the target (left out of the trend)"
                                                      if label in (SHARPNESS_KEYS[0], "test accuracy") else None))

    for key, color in zip(SHARPNESS_KEYS, ("tab:blue", "tab:orange", "tab:green", "tab:purple")):
        draw(axes[0], lambda b, key=key: b["sharpness"][key], 1.0, color, key)
    axes[0].set(xscale="log", yscale="log", xlabel="batch size", ylabel="ε-sharpness φ (%)")
    draw(axes[1], lambda b: b["test_accuracy"], 100.0, "tab:red", "test accuracy")
    axes[1].set(xscale="log", xlabel="batch size", ylabel="test accuracy (%)")
    for axis in axes:
        axis.xaxis.set_minor_locator(NullLocator())  # Only the batch sizes run are labelled on the log axis.
        axis.set_xticks(batches, [str(b) for b in batches])
        axis.legend(fontsize=7)
    style.save(fig, path)


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
        apart = "" if batch in analysis["in_trend"] else " (short of the target: left out of the trend)"
        table.append(f"| {batch}{apart} | {b['runs']} ({b['reached']}) | {b['epochs_run'].text(digits=3)} | "
                     f"{b['train_accuracy'].text(100)} | {b['test_accuracy'].text(100)} | "
                     + " | ".join(b["sharpness"][key].text() for key in SHARPNESS_KEYS) + " |")

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## Sharpness and test accuracy against the batch size (Figure 4)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 shared CPU cores. {len(rows)} runs "
            f"({sum(r['wall_seconds'] or 0 for r in rows) / 60:.1f} min of training wall time in all). It ran (the "
            "first is the table part's sweep, reused):", "",
            *command_lines(s.command() for s in commands.values()), "",
            describe(config), f"SB and LB: seeds {list(config.seeds)} (the table's runs); batch sizes "
            f"{', '.join(str(b) for b in config.figure4_batches)}: seeds {list(config.figure4_seeds)} only, for time. "
            "Kendall's τ_b is over the runs, so each batch size weighs by its number of runs.", "", *table, ""]

    return write_part(output, "batch_size", work_dir=work_dir, started=started, command=command, train=train,
                      analysis=analysis,
                      runs=rows, claims=claims(rows), plot=lambda path: plot(analysis, path),
                      figure=("batch_size.png", "sharpness and accuracy vs batch size"), section=section)
