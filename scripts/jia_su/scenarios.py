"""Seed 004 §7.1, Figures 1–3: do γ̂ and the other metrics of a minimum rank the test error across the settings of
three scenarios (I: confusion-set size, II: augmentation, III: batch size)?

Each scenario is one sweep over its axis (the default setting is trained once, in the `default` sweep, and shared by
the three scenarios and the regularizer part). Claims, per scenario: the setting changes the test error as the paper
says (I: more confusion and III: larger batches raise it, II: stronger augmentation lowers it: Kendall's τ_b of the
setting's position against the test error over the runs); each metric ranks the test error (τ_b > 0 over the runs)
where the paper's figure says it does, and is unrelated to it (|τ_b| within a margin) where the paper says it fails.
Beside each metric's τ: the training-loss baseline (τ of the clean training loss), the partial τ given the training
loss, and the mean τ within a setting (only the seed varies). Every claim is about minima: the runs compare only if
they all reached the same stop target.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from reproduction import Claim, claim_lines, command_lines, new_figure, save_figure

from jia_su import setup
from tfregimes.analysis import Effect, kendall_tau, same_stop_target, verdict
from tfregimes.base.run_dir import write_atomically
from tfregimes.results.table import markdown_table

SCENARIOS = {  # part name -> (axis flag, title, the paper's figure)
    "confusion": ("confusion_size", "Scenario I: size of the confusion set", "Figure 1"),
    "augmentation": ("augment", "Scenario II: data augmentation", "Figure 2"),
    "batch_size": ("batch_size", "Scenario III: batch size", "Figure 3"),
}
# How the test error moves along each axis's order (the paper's finding): the claim and the sign of τ it makes.
ERROR_TREND = {"confusion_size": ("The test error rises with a larger confusion set", "greater"),
               "augment": ("The test error falls with stronger augmentation", "less"),
               "batch_size": ("The test error rises with a larger batch", "greater")}
# A metric the paper says fails to track the test error is claimed unrelated to it: |τ_b| below this margin. With
# no ties, τ_b = 0.3 orders 65 % of the pairs of runs as the test error does (a coin orders 50 %), the least
# we would call ranking it.
TAU_MARGIN = 0.3


def axis_values(axis: str, size: dict) -> list:
    """The settings in the order the figures use: for augmentation from none to the strongest, the test error
    should fall along it."""
    return {"confusion_size": list(size["confusion_sizes"]), "augment": list(size["augments"]),
            "batch_size": list(size["batch_sizes"])}[axis]


def default_value(axis: str, size: dict):
    return size["batch_sizes"][0] if axis == "batch_size" else setup.DEFAULTS[axis]


def sweeps(axis: str, size: dict, work_dir: Path) -> dict[str, list[str]]:
    others = [v for v in axis_values(axis, size) if v != default_value(axis, size)]
    return {"default": setup.sweep_argv("default", size, work_dir, []),
            axis: setup.sweep_argv(axis, size, work_dir, [f"--grid={axis}={','.join(str(v) for v in others)}"])}


def interval(effect: Effect) -> str:
    """An effect as a table cell: its estimate and 95 % CI."""
    if not np.isfinite(effect.estimate):
        return "—"
    return f"{effect.estimate:+.2f} [{effect.low:+.2f}, {effect.high:+.2f}]"


def mean_tau(value: float, groups: int) -> str:
    """A mean τ over groups of runs (granulated_kendall's per-axis value) as a table cell."""
    return "—" if not np.isfinite(value) else f"{value:+.2f} ({groups} group{'' if groups == 1 else 's'})"


def claims(axis: str, runs: pd.DataFrame, order: list, settings: list[dict], ranks: dict[str, setup.Ranking],
           base: Effect) -> list[Claim]:
    """The scenario's claims over `runs` (its finished runs; rows of tfregimes.results.collect): the test error's
    trend along the axis, then each metric's τ against the test error (`ranks`: setup.ranking; `base`: the
    training-loss baseline, setup.baseline)."""
    compared = same_stop_target(runs)
    reached = (f"{sum(s['reached_target'] for s in settings)} of {sum(s['n'] for s in settings)} models reached the "
               "stop at 99.9 % clean training accuracy")
    position = runs[axis].map({value: i for i, value in enumerate(order)})
    text, direction = ERROR_TREND[axis]
    trend = kendall_tau(position, runs["test_error"], name=f"τ_b(position along {axis}, test error) over runs")
    out = [(text, verdict(trend, direction, comparability=compared),
            "test error (%) per setting: " + ", ".join(f"{s['setting']}: {setup.cell(s['test_error'])}"
                                                       for s in settings) + f"; {reached}")]
    for metric, rank in ranks.items():
        label = setup.METRIC_LABELS[metric]
        numbers = (f"training-loss baseline {base.text()}; {rank.partial.text()}; mean τ within a setting "
                   f"{mean_tau(rank.within_setting, rank.groups['within_setting'])}, across settings within a seed "
                   f"{mean_tau(rank.across_settings, rank.groups['across_settings'])}")
        if setup.PAPER_CAPTURES[axis][metric]:
            out.append((f"{label} ranks the test error across the runs (paper: it tracks it)",
                        verdict(rank.tau, "greater", comparability=compared), numbers))
        else:
            out.append((f"{label} is unrelated to the test error, |τ_b| < {TAU_MARGIN} (paper: it fails to track "
                        "it)", verdict(rank.tau, "equivalent", margin=TAU_MARGIN, comparability=compared), numbers))
    return out


def plot(axis: str, title: str, settings: list[dict], path: Path) -> None:
    panels = ("test_error", *setup.METRICS)
    fig, axes = new_figure(1, len(panels), figsize=(3.0 * len(panels), 3.0))
    x = np.arange(len(settings))
    for ax, column in zip(axes, panels):
        mean = np.array([s[column]["mean"] for s in settings])
        std = np.nan_to_num([s[column]["std"] for s in settings])
        ax.plot(x, mean, "o-", color="C0" if column == "test_error" else "C1")
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, color="C0" if column == "test_error" else "C1")
        ax.set_xticks(x, [str(s["setting"]) for s in settings], rotation=30, fontsize=8)
        ax.set_title("test error (%)" if column == "test_error" else setup.METRIC_LABELS[column], fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: mean ± 1 std over seeds (x: {axis})", fontsize=10)
    save_figure(fig, path, dpi=72)


def tables(settings: list[dict], runs: pd.DataFrame, ranks: dict[str, setup.Ranking], base: Effect) -> list[str]:
    header = ["setting", "n", "test error (%)", "train loss (clean)", "last-epoch loss (fit set)", "reached / epochs",
              *[setup.METRIC_LABELS[m] for m in setup.METRICS]]
    rows = [[str(s["setting"]), str(s["n"]), setup.cell(s["test_error"]), setup.cell(s["train_loss"], 3),
             setup.cell(s["last_epoch_train_loss"], 3),
             f"{s['reached_target']} / {','.join(str(e) for e in s['epochs'])}",
             *[setup.cell(s[m]) for m in setup.METRICS]] for s in settings]
    tau_rows = [["train loss (baseline)", interval(base), "", "", ""]] + [
        [setup.METRIC_LABELS[m], interval(r.tau), interval(r.partial),
         mean_tau(r.within_setting, r.groups["within_setting"]),
         mean_tau(r.across_settings, r.groups["across_settings"])] for m, r in ranks.items()]
    return [markdown_table(header, rows), "",
            f"Kendall's τ_b against the test error over the {len(runs)} finished runs, with its 95 % bootstrap CI "
            "(tfregimes.analysis); the partial τ given the clean training loss; Jiang et al.'s mean τ within a "
            "setting (only the seed varies) and across the settings (within a seed):", "",
            markdown_table(["metric", "τ_b (runs) [95 % CI]", "τ given train loss [95 % CI]", "τ within a setting",
                            "τ across settings"], tau_rows)]


def run(part: str, output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path, log=print,
        parallel: int | None = None, train: bool = True) -> list[Claim]:
    axis, title, figure = SCENARIOS[part]
    size = setup.sizes(smoke, parallel)
    started = time.time()
    commands = sweeps(axis, size, work_dir)
    if train:
        setup.run_sweeps(commands, log)
    df = setup.read_runs([work_dir / name for name in commands])
    order = axis_values(axis, size)
    runs = setup.done_runs(df, axis, order)
    settings = setup.per_setting(df, axis, order)
    ranks, base = setup.ranking(runs, axis), setup.baseline(runs)
    found = claims(axis, runs, order, settings, ranks, base)
    output.mkdir(parents=True, exist_ok=True)
    plot(axis, title, settings, output / f"{part}.png")
    write_atomically(output / f"{part}.json", json.dumps({
        "axis": axis, "summary": settings, "ranking": {m: r.as_dict() for m, r in ranks.items()},
        "baseline": base.as_dict(),
        "claims": [{"claim": c, "numbers": n, **v.as_dict()} for c, v, n in found]}, indent=1))
    train_minutes = float(df["wall_seconds"].sum()) / 60
    text = "\n".join([
        f"## {title} ({figure})", "",
        f"Command: `{command}`. The {len(df)} models' training took {train_minutes:.1f} min of wall time in all "
        f"(2 shared CPU cores; the default setting's models are shared with the other parts); this invocation took "
        f"{(time.time() - started) / 60:.1f} min. Its sweeps (rerunning one resumes it):", "",
        *command_lines(s.command() for s in commands.values()), "",
        *tables(settings, runs, ranks, base), "", f"![{part}]({part}.png)", "", *claim_lines(found)])
    write_atomically(output / f"{part}.md", text)
    return found
