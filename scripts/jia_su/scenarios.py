"""Seed 004 §7.1, Figures 1–3: do γ̂ and the other metrics of a minimum rank the test error across the settings of
three scenarios (I: confusion-set size, II: augmentation, III: batch size)?

Each scenario is one sweep over its axis (the default setting is trained once, in the `default` sweep, and shared by
the three scenarios and the regularizer part). Claims, per scenario: the setting changes the test error as the paper
says (I: more confusion and III: larger batches raise it, II: stronger augmentation lowers it: Kendall's τ_b of the
setting's position against the test error over the runs); each metric ranks the test error (τ_b > 0 over the runs)
where the paper's figure says it does, and is unrelated to it (|τ_b| within a margin) where the paper says it fails.
A metric the paper says tracks the test error is also claimed to rank it beyond the training loss (partial τ given
the clean training loss > 0: every run stops at the same loss target, but what remains of the loss may still order
the test error). Beside each metric's τ in the claim table: the training-loss baseline (τ of the clean training loss
over the same runs), the partial τ, and the mean τ within a setting (only the seed varies). Every claim is about
minima: a setting is compared only if all its runs reached the stop target; one that did not is shown apart, as not
comparable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from reproduction import Claim, claim_lines, command_lines

from jia_su import setup
from tfregimes.analysis import (
    NOT_COMPARABLE,
    SUPPORTS,
    Comparability,
    Effect,
    kendall_tau,
    same_stop_target,
    verdict,
)
from tfregimes.base.run_dir import write_atomically
from tfregimes.report.ranking import interval_text
from tfregimes.report.style import new_figure, save
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
BEYOND_FIT = "{label} ranks the test error beyond the training loss (partial τ given it > 0)"


def axis_values(axis: str, size: dict) -> list:
    """The settings in the order the figures use: for augmentation from none to the strongest, the test error
    should fall along it."""
    return {"confusion_size": list(size["confusion_sizes"]), "augment": list(size["augments"]),
            "batch_size": list(size["batch_sizes"])}[axis]


def default_value(axis: str, size: dict):
    return size["batch_sizes"][0] if axis == "batch_size" else setup.DEFAULTS[axis]


def sweeps(axis: str, size: dict, work_dir: Path) -> dict[str, setup.Sweep]:
    """The shared default setting's sweep, the axis's other settings, and those of them trained with fewer seeds
    (`size["fewer_seeds"]`: settings the pilot showed cannot reach the stop, shown apart) in a sweep of their own."""
    others = [v for v in axis_values(axis, size) if v != default_value(axis, size)]
    fewer = [v for v in others if v in size["fewer_seeds"]]
    out = {"default": setup.sweep_argv("default", size, work_dir, [])}
    for name, values, seeds in ((axis, [v for v in others if v not in fewer], size["seeds"]),
                                (f"{axis}_fewer_seeds", fewer, size["seeds"][:size["fewer_seeds_count"]])):
        if values:
            out[name] = setup.sweep_argv(name, size, work_dir, [f"--grid={axis}={','.join(str(v) for v in values)}"],
                                         seeds=seeds)
    return out


def mean_tau(value: float, groups: int) -> str:
    """A mean τ over groups of runs (granulated_kendall's per-axis value) as a table cell."""
    return "—" if not np.isfinite(value) else f"{value:+.2f} ({groups} group{'' if groups == 1 else 's'})"


def cell(effect: Effect) -> str:
    """An effect as a table cell: its estimate and 95 % CI (tfregimes.report's cell)."""
    return interval_text(effect.estimate, effect.low, effect.high)


def split_settings(runs: pd.DataFrame, axis: str, order: list) -> tuple[list, dict]:
    """(the settings compared, {setting: why} for those set apart): a setting is compared when every one of its
    finished runs reached the stop target (`same_stop_target`); one that did not is not comparable and is shown apart
    (its runs would compare a minimum with a model still training), never mixed into the τ's."""
    compared, apart = [], {}
    for value in order:
        chosen = runs[runs[axis] == value]
        if len(chosen) == 0:
            continue
        check = same_stop_target(chosen)
        if check.ok:
            compared.append(value)
        else:
            apart[value] = check.why
    return compared, apart


def _claims(axis: str, runs: pd.DataFrame, order: list, settings: list[dict], ranks: dict[str, setup.Ranking],
            apart: dict) -> list[tuple[Claim, str | None]]:
    """(claim, the metric it is about or None for the trend), in the order of the claim table."""
    compared = same_stop_target(runs)
    if compared.ok and runs[axis].nunique() < 2:  # Only the seed would vary: no claim of the scenario is tested.
        compared = Comparability(False, f"only {runs[axis].nunique()} setting of {axis} reached the stop target")
    reached = (f"{sum(s['reached_target'] for s in settings)} of {sum(s['n'] for s in settings)} models reached the "
               f"stop ({compared.why if compared.ok else 'see each setting'})")
    if apart:
        reached += "; set apart, not comparable: " + "; ".join(f"{v} ({why})" for v, why in apart.items())
    position = runs[axis].map({value: i for i, value in enumerate(order)})
    text, direction = ERROR_TREND[axis]
    trend = kendall_tau(position, runs["test_error"], name=f"τ_b(position along {axis}, test error) over runs")
    out = [((text, verdict(trend, direction, comparability=compared),
             "test error (%) per setting: " + ", ".join(f"{s['setting']}: {setup.cell(s['test_error'])}"
                                                        for s in settings) + f"; {reached}"), None)]
    for metric, rank in ranks.items():
        label = setup.METRIC_LABELS[metric]
        numbers = (f"training-loss baseline {rank.baseline.text()}; {rank.partial.text()}; mean τ within a setting "
                   f"{mean_tau(rank.within_setting, rank.groups['within_setting'])}, across settings within a seed "
                   f"{mean_tau(rank.across_settings, rank.groups['across_settings'])}")
        if setup.PAPER_CAPTURES[axis][metric]:
            out.append(((f"{label} ranks the test error across the runs (paper: it tracks it)",
                         verdict(rank.tau, "greater", comparability=compared), numbers), metric))
            # All runs stop at the same training loss, yet what is left of it may still order the test error: the
            # metric explains something beyond fit only if its partial τ given the training loss is above 0.
            out.append(((BEYOND_FIT.format(label=label), verdict(rank.partial, "greater", comparability=compared),
                         numbers), metric))
        else:
            out.append(((f"{label} is unrelated to the test error, |τ_b| < {TAU_MARGIN} (paper: it fails to track "
                         "it)", verdict(rank.tau, "equivalent", margin=TAU_MARGIN, comparability=compared), numbers),
                        metric))
    return out


def claims(axis: str, runs: pd.DataFrame, order: list, settings: list[dict], ranks: dict[str, setup.Ranking],
           apart: dict | None = None) -> list[Claim]:
    """The scenario's claims over `runs` (the finished runs of the compared settings; rows of
    tfregimes.results.collect): the test error's trend along the axis, then each metric's τ against the test error
    (`ranks`: setup.ranking), and for a metric the paper says tracks it, its partial τ given the training loss.
    `apart`: the settings set apart (split_settings), named in the numbers."""
    return [claim for claim, _ in _claims(axis, runs, order, settings, ranks, apart or {})]


def claim_table(axis: str, runs: pd.DataFrame, order: list, settings: list[dict], ranks: dict[str, setup.Ranking],
                apart: dict) -> list[str]:
    """The claims as a table: each one's verdict and the effect it rests on, beside the training-loss baseline, the
    partial τ given the training loss and the mean τ within a setting of the metric it is about."""
    rows = []
    for (claim, found, _), metric in _claims(axis, runs, order, settings, ranks, apart):
        rank = ranks.get(metric)
        rows.append([claim, found.word, cell(found.effect),
                     *([cell(rank.baseline), cell(rank.partial), mean_tau(rank.within_setting,
                                                                         rank.groups["within_setting"])]
                       if rank else ["", "", ""])])
    return [markdown_table(["claim", "verdict", "effect [95 % CI]", "train-loss baseline τ_b [95 % CI]",
                            "partial τ given train loss [95 % CI]", "mean τ within a setting"], rows)]


def finding(ranks: dict[str, setup.Ranking], found: list[Claim]) -> str:
    """The plain sentence on γ̂ beyond fit that heads the claims, from the verdict on its partial τ."""
    rank = ranks["fisher_logdet"]
    word = next(v.word for c, v, _ in found if c == BEYOND_FIT.format(label=setup.METRIC_LABELS["fisher_logdet"]))
    partial = cell(rank.partial)
    if word == NOT_COMPARABLE:
        return f"**Beyond fit:** not measured (the runs are not comparable; partial τ of γ̂ given the training loss " \
               f"{partial})."
    if word == SUPPORTS:
        return (f"**Beyond fit:** γ̂ orders the test error beyond what the training loss explains (partial τ given "
                f"the training loss {partial}, its 95 % CI above 0).")
    return (f"**Beyond fit:** at this scale γ̂ explains nothing beyond the training loss that the runs can show: its "
            f"partial τ given the training loss is {partial}, a 95 % CI that does not lie above 0 (τ_b "
            f"{cell(rank.tau)}; the training loss alone {cell(rank.baseline)}).")


def plot(axis: str, title: str, settings: list[dict], apart: dict, path: Path) -> None:
    """Test error and each metric per setting (mean ± 1 std over seeds); a setting set apart (not at the stop
    target) is drawn hollow."""
    panels = ("test_error", *setup.METRICS)
    fig, axes = new_figure(len(panels), f"{title}: mean ± 1 std over seeds (x: {axis}; hollow: set apart, not at "
                           "the stop target)", width=3.0, height=3.0)
    x = np.arange(len(settings))
    for ax, column in zip(axes, panels):
        color = "C0" if column == "test_error" else "C1"
        mean = np.array([s[column]["mean"] for s in settings])
        std = np.nan_to_num([s[column]["std"] for s in settings])
        ax.plot(x, mean, "-", color=color)
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, color=color)
        hollow = np.array([s["setting"] in apart for s in settings], dtype=bool)
        ax.plot(x[~hollow], mean[~hollow], "o", color=color)
        ax.plot(x[hollow], mean[hollow], "o", markerfacecolor="white", color=color)
        ax.set_xticks(x, [str(s["setting"]) for s in settings], rotation=30, fontsize=8)
        ax.set_title("test error (%)" if column == "test_error" else setup.METRIC_LABELS[column], fontsize=9)
    save(fig, path)


def tables(settings: list[dict], runs: pd.DataFrame, apart: dict) -> list[str]:
    header = ["setting", "n", "test error (%)", "train loss (clean)", "confusion-set loss", "reached / epochs",
              *[setup.METRIC_LABELS[m] for m in setup.METRICS]]
    rows = [[f"{s['setting']}{' (apart)' if s['setting'] in apart else ''}", str(s["n"]), setup.cell(s["test_error"]),
             setup.cell(s["train_loss"], 3),
             setup.cell(s["confusion_loss"], 3), f"{s['reached_target']} / {','.join(str(e) for e in s['epochs'])}",
             *[setup.cell(s[m]) for m in setup.METRICS]] for s in settings]
    set_apart = (["**Set apart, not comparable** (left out of every τ below; their numbers are the table's): "
                  + "; ".join(f"{value}: {why}" for value, why in apart.items()) + ".", ""] if apart else [])
    return [markdown_table(header, rows), "", *set_apart,
            f"The claims over the {len(runs)} finished runs of the compared settings: each verdict by "
            "tfregimes.analysis's rule on the effect's 95 % CI (Kendall's τ_b over the runs with a bootstrap CI; "
            "the partial τ given the clean training loss, Kendall 1942); beside each metric, the training loss's own "
            "τ_b against the test error (the baseline a metric must beat) and Jiang et al.'s mean τ within a setting "
            "(only the seed varies):", ""]


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
    settings = setup.per_setting(df, axis, order)
    kept, apart = split_settings(setup.done_runs(df, axis, order), axis, order)
    runs = setup.done_runs(df, axis, kept)
    ranks = setup.ranking(runs, axis)
    found = claims(axis, runs, kept, settings, ranks, apart)
    output.mkdir(parents=True, exist_ok=True)
    plot(axis, title, settings, apart, output / f"{part}.png")
    write_atomically(output / f"{part}.json", json.dumps({
        "axis": axis, "summary": settings, "compared": kept, "apart": apart,
        "ranking": {m: r.as_dict() for m, r in ranks.items()},
        "claims": [{"claim": c, "numbers": n, **v.as_dict()} for c, v, n in found]}, indent=1, default=str))
    train_minutes = float(df["wall_seconds"].sum()) / 60 if len(df) else 0.0
    text = "\n".join([
        f"## {title} ({figure})", "",
        f"Command: `{command}`. The {len(df)} models' training took {train_minutes:.1f} min of wall time in all "
        f"(the sum over models; 2 shared CPU cores; the default setting's models are shared with the other parts); "
        f"this invocation took {(time.time() - started) / 60:.1f} min. Its sweeps (rerunning one resumes it):", "",
        *command_lines(s.command() for s in commands.values()), "",
        *tables(settings, runs, apart), *claim_table(axis, runs, kept, settings, ranks, apart), "",
        finding(ranks, found), "", f"![{part}]({part}.png)", "", *claim_lines(found)])
    write_atomically(output / f"{part}.md", text)
    return found
