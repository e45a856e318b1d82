"""The results page's sections: the setting (sweep commands, scale-down, wall time) and one per part, each written
as `<part>.md` with its JSON and figure beside it, so a part can be rerun alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from reproduction import claim_lines, command_lines

from lee import accuracy, curves, margins, regimes
from tfregimes.analysis import summarize
from tfregimes.base.run_dir import write_atomically


def write_setting(output: Path, s: regimes.Setting, sweeps: dict, runs: dict[str, list[dict]],
                  command: str, minutes: float) -> None:
    train_minutes = sum(r["wall_seconds"] for rs in runs.values() for r in rs) / 60
    text = "\n".join([
        "## Setting", "",
        f"Command: `{command}`. The {sum(len(r) for r in runs.values())} runs took {train_minutes:.1f} min of wall "
        f"time in all (one thread each, on 2 CPU cores shared with other jobs); this invocation took {minutes:.1f} "
        "min (runs finished before are reused, not rerun). It ran these sweeps (rerunning one resumes it):", "",
        *command_lines(sweep.command() for sweep in sweeps.values()), "",
        regimes.__doc__.split("\n\n", 1)[1].strip(), "",
        f"Sizes: {s.epochs} epochs for every regime; small batch {s.small_batch} at η = {s.learning_rate:g}; large "
        f"batch {s.large_batch} at η = {s.learning_rate:g} × {s.large_batch}/{s.small_batch} = "
        f"{s.large_learning_rate:g} after {s.warmup_epochs} warm-up epochs (Goyal et al.); step schedule ×0.1 at 50 % "
        f"and 75 % of the epochs; LARS at η = {s.lars_learning_rate:g}, trust 0.001, same warm-up and steps; "
        f"extended exploration: flat when the training loss improved by less than {s.flat_tolerance:g} (relative) "
        f"over {s.flat_window} epochs, then {s.extra_exploration_epochs} more epochs at the peak, then ×0.1 every "
        f"{s.decay_interval_epochs} epochs down to {s.min_lr:g}; weight decay {s.weight_decay:g}, momentum 0.9, seeds "
        f"{', '.join(map(str, s.seeds))}.", ""])
    write_atomically(output / "setting.md", text)


def write_accuracy(output: Path, frame: pd.DataFrame, runs: dict[str, list[dict]]) -> list:
    analysis = accuracy.analyse(runs)
    claims = accuracy.verdicts(analysis)
    write_atomically(output / "accuracy.json", json.dumps({"analysis": analysis,
                                                           "verdicts": [v.as_dict() for _, v, _ in claims]}, indent=1))
    text = "\n".join([
        "## Final test accuracy (seed 000's tables)", "", accuracy.__doc__.split("\n\n", 1)[1].strip(), "",
        *accuracy.rows(analysis, regimes.LABELS), "",
        "Every final metric per regime, mean ± sample std over seeds (`tfregimes.results.group_summary`):", "",
        accuracy.summary_table(frame), "", *claim_lines(claims)])
    write_atomically(output / "accuracy.md", text)
    return claims


def write_curves(output: Path, runs: dict[str, list[dict]], epochs: int) -> list:
    analysis = curves.analyse(runs, epochs)
    claims = curves.verdicts(analysis)
    curves.plot(runs, regimes.LABELS, output / "curves.png")
    write_atomically(output / "curves.json", json.dumps({"analysis": analysis, "verdicts": [
        v.as_dict() for _, v, _ in claims], "runs": {
        regime: [{k: v for k, v in r.items()} for r in rs] for regime, rs in runs.items()}}))
    decisions = ["| seed | loss flat after epoch | decay from epoch | test accuracy (%) | controller's record "
                 "(history.csv `lr_event`) |", "|---|---|---|---|---|"]
    for d in analysis["decisions"]:
        events = "; ".join(f"epoch {e}: {t}" for e, t in sorted(d["events"].items())) or "none"
        accuracy_text = "diverged" if d["test_accuracy"] is None else f"{100 * d['test_accuracy']:.1f}"
        decisions.append(f"| {d['seed']} | {d['flat_epoch'] or 'never'} | {d['decay_epoch'] or 'never'} | "
                         f"{accuracy_text} | {events} |")
    text = "\n".join([
        "## Learning curves with the run-time decay points (appendix A.3, Figures 4–7)", "",
        curves.__doc__.split("\n\n", 1)[1].strip(), "", "![learning curves](curves.png)", "", *decisions, "",
        *claim_lines(claims)])
    write_atomically(output / "curves.md", text)
    return claims


def write_margins(output: Path, frame: pd.DataFrame, runs: dict[str, list[dict]]) -> list:
    analysis = margins.analyse(runs, frame)
    claims = margins.verdicts(analysis)
    margins.plot(analysis, runs, regimes.LABELS, output / "margins.png")
    write_atomically(output / "margins.json", json.dumps({"analysis": analysis,
                                                          "verdicts": [v.as_dict() for _, v, _ in claims]}))
    table = ["| regime | q1 | median | q3 | inter-quartile mean, mean ± std over seeds |", "|---|---|---|---|---|"]
    for regime, c in analysis["curves"].items():
        table.append(f"| {regimes.LABELS[regime]} | " + " | ".join(
            f"{c[q][-1]:.4f}" if c["epoch"] else "—" for q in margins.QUARTILES[:3])
            + f" | {summarize(analysis['final'][regime].values()).text()} |")
    for name, values in analysis["explore_by_decision"].items():
        if values:
            table.append(f"| … exploration runs whose controller {name} | | | | "
                         f"{', '.join(f'{v:.4f}' for v in values.values())} (per seed) |")
    text = "\n".join([
        "## Margin distribution over training (appendix A.1, Figure 1)", "",
        margins.__doc__.split("\n\n", 1)[1].strip(), "", "Last epoch, mean over seeds:", "", *table, "",
        "![margins](margins.png)", "", *claim_lines(claims)])
    write_atomically(output / "margins.md", text)
    return claims
