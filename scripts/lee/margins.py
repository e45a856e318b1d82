"""Seed 000 appendix A.1 / Figure 1 at CPU scale: the margin distribution over training, per regime.

The `margins` training diagnostic logs, at every epoch, the first-order margins of 1,024 training examples (Jiang
et al. 2018, seed 000 eq. 12: d = (f_y − f_c)/‖∇_x f_y − ∇_x f_c‖₂, c the highest other logit), normalized by
√(total variation of x), as quartiles (`margin_q1`, `margin_median`, `margin_q3`) and `margin_mean`, the mean
inside the inter-quartile range (A.1: "we ignore the margins smaller than the first quartile and larger than the
third quartile"). Our copy of seed 000 has A.1's method but not Figure 1's curves: A.1 says the analysis is there to
understand "the impact of the length of exploration phase on the generalization performance". Claims we test, each
a difference paired by seed of the last epoch's inter-quartile mean margin:
1. extended exploration leaves larger normalized margins than the large batch under the Goyal schedule;
2. the small batch's margins are larger than the large batch's (the gap shows in the margins too).
Margins at the end of training describe the minima reached, so the regimes compare only at the same clean training
loss: every run trains to a common target, and a claim is comparable only when all runs of its two regimes reached
it (`tfregimes.analysis.same_stop_target`); the numbers give the clean training losses they ended at. The margins
of the last epoch are those at the stop (the diagnostic runs every epoch).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from reproduction import Claim

from lee.accuracy import by_decision
from tfregimes.analysis import Comparability, paired_difference, same_stop_target, summarize, verdict
from tfregimes.report import style

QUARTILES = ("margin_q1", "margin_median", "margin_q3", "margin_mean")


def mean_curves(runs: list[dict]) -> dict[str, list[float]]:
    """Per epoch, the mean over the regime's finished runs of each margin quartile (NaN where none logged)."""
    done = [r["curves"] for r in runs if not r["diverged"] and "margin_mean" in r["curves"]]
    if not done:
        return {"epoch": []}
    epochs = min(len(c["epoch"]) for c in done)
    out = {"epoch": done[0]["epoch"][:epochs]}
    for name in QUARTILES:
        values = np.array([[math.nan if v is None else v for v in c[name][:epochs]] for c in done], dtype=float)
        out[name] = [summarize(column).mean for column in values.T]  # NaN where no run logged a value.
    return out


def final_margins(runs: list[dict]) -> dict[int, float]:
    """{seed: the last logged inter-quartile mean margin} of each finished run."""
    out = {}
    for r in runs:
        values = [v for v in r["curves"].get("margin_mean", []) if v is not None and math.isfinite(v)]
        if not r["diverged"] and values:
            out[int(r["seed"])] = values[-1]
    return out


CLAIMS = {"explore_vs_large": ("explore", "large_batch", "Extended exploration ends with larger normalized margins "
                                                       "than the large batch under the Goyal schedule"),
          "small_vs_large": ("small_batch", "large_batch",
                             "The small batch ends with larger normalized margins than the large batch")}


def analyse(runs: dict[str, list[dict]], frame: pd.DataFrame) -> dict:
    """The margins per regime and seed, and for each claim whether its two regimes' runs (rows of `frame`, the
    `collect` rows with a `regime` column) reached the same stop target."""
    compared = {}
    for key, (a, b, _) in CLAIMS.items():
        c = same_stop_target(frame[frame["regime"].isin([a, b])])
        compared[key] = {"ok": c.ok, "why": c.why}
    return {"curves": {regime: mean_curves(rs) for regime, rs in runs.items()},
            "final": {regime: final_margins(rs) for regime, rs in runs.items()},
            "train_loss": {regime: [r["train_loss"] for r in rs if not r["diverged"]] for regime, rs in runs.items()},
            "explore_by_decision": {name: final_margins(rs) for name, rs in by_decision(runs["explore"]).items()},
            "compared": compared}


def verdicts(analysis: dict) -> list[Claim]:
    final = analysis["final"]
    out = []
    for key, (a, b, claim) in CLAIMS.items():
        effect = paired_difference(final[a], final[b], name=f"{a.replace('_', ' ')} − {b.replace('_', ' ')} "
                                   "last inter-quartile mean margin")
        losses = ", ".join(f"{name.replace('_', ' ')} {summarize(analysis['train_loss'][name]).text(digits=3)}"
                           for name in (a, b))
        compared = Comparability(**analysis["compared"][key])
        out.append((claim, verdict(effect, "greater", comparability=compared),
                    f"margins: {a.replace('_', ' ')} {summarize(final[a].values()).text()}, {b.replace('_', ' ')} "
                    f"{summarize(final[b].values()).text()}; final training loss (clean set): {losses}"
                    + ("" if compared.ok else "; margins compare only at the common training-loss target, which "
                       "not every run of the two regimes reached")))
    return out


def plot(analysis: dict, runs: dict[str, list[dict]], labels: dict[str, str], path) -> None:
    regimes = list(analysis["curves"])
    twins = []
    fig, axes = style.new_figure(len(regimes), "Margin distribution over training (dotted: run-time decay of each "
                                 "exploration run)", width=4.2, height=3.8)
    for ax, regime, color in zip(axes, regimes, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        c = analysis["curves"][regime]
        if c["epoch"]:
            ax.fill_between(c["epoch"], c["margin_q1"], c["margin_q3"], color=color, alpha=0.25,
                            label="q1–q3 (mean over seeds)")
            ax.plot(c["epoch"], c["margin_median"], color=color, label="median")
            ax.plot(c["epoch"], c["margin_mean"], color="black", linestyle="--", label="inter-quartile mean")
        for r in runs[regime]:
            if r.get("decay_epoch"):
                ax.axvline(r["decay_epoch"], color="gray", linestyle=":", linewidth=1)
        ax.axhline(0, color="gray", linewidth=0.5)
        # A.1 compares the accumulated margin with the training loss curve: the mean loss on a second axis.
        losses = [r["curves"]["loss"] for r in runs[regime] if not r["diverged"] and "loss" in r["curves"]]
        if losses:
            epochs = min(len(loss) for loss in losses)
            values = np.array([[math.nan if v is None else v for v in loss[:epochs]] for loss in losses], dtype=float)
            twin = ax.twinx()
            twin.plot(c["epoch"][:epochs] if c["epoch"] else range(1, epochs + 1),
                      [summarize(column).mean for column in values.T], color="gray", linewidth=1,
                      label="training loss (right)")
            twin.tick_params(labelsize=7)
            twin.grid(False)
            twins.append(twin)
            twin.legend(fontsize=7, loc="lower right")
        ax.set(title=labels[regime], xlabel=style.EPOCH_LABEL)
        style.integer_epochs(ax)
    if twins:  # One loss scale for every panel, so the regimes compare.
        low, high = min(t.get_ylim()[0] for t in twins), max(t.get_ylim()[1] for t in twins)
        for twin in twins:
            twin.set_ylim(max(low, 0.0), high)
    axes[0].set_ylabel("normalized margin (seed 000 A.1)")
    axes[0].legend(fontsize=7, loc="upper left")
    style.save(fig, path)
