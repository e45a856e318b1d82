"""Seed 000 appendix A.1's own question at CPU scale: the margin distribution against the length of the extended
exploration, at the same clean training loss.

A.1 analyses the margins to understand "the impact of the length of exploration phase on the generalization
performance"; our copy has the method but not Figure 1's curves. The large batch with the run-time decay runs with
`--extra_exploration_epochs` ∈ the setting's lengths (the rest of its flags as the `explore` regime), 5 seeds each,
every run trained to the common clean-loss target. At the stop, per run: the `margins` diagnostic's quartiles and
inter-quartile mean (the normalized first-order margins of 1,024 training examples, see the margins section) and the
test accuracy. Claims, each a difference paired by seed between the longest and the shortest exploration:
1. a longer exploration leaves larger normalized margins (inter-quartile mean at the stop);
2. a longer exploration ends with a higher test accuracy.
Both are about minima, so both are comparable only when every run of the two lengths reached the target
(`tfregimes.analysis.same_stop_target`); a length whose runs stopped at the cap is shown, not compared.
"""

from __future__ import annotations

import math

import pandas as pd
from reproduction import Claim

from lee.margins import QUARTILES, final_margins, mean_curves
from tfregimes.analysis import Comparability, paired_difference, same_stop_target, summarize, verdict
from tfregimes.report import style


def last_quartiles(runs: list[dict]) -> dict[str, dict[int, float]]:
    """{quartile: {seed: its value at the run's last logged epoch}} of the finished runs."""
    out: dict[str, dict[int, float]] = {}
    for name in QUARTILES:
        out[name] = {}
        for r in runs:
            values = [v for v in r["curves"].get(name, []) if v is not None and math.isfinite(v)]
            if not r["diverged"] and values:
                out[name][int(r["seed"])] = values[-1]
    return out


def analyse(frame: pd.DataFrame, by_length: dict[int, list[dict]]) -> dict:
    """Per length: margins and accuracy by seed, the target reached, epochs run, decay epochs, mean margin curves;
    and whether the shortest and longest lengths' runs reached the same target."""
    lengths = sorted(by_length)
    ends = frame[frame["extra_exploration_epochs"].isin([lengths[0], lengths[-1]])] if len(frame) else frame
    c = same_stop_target(ends)
    return {"lengths": lengths, "compared": {"ok": c.ok, "why": c.why},
            "by_length": {length: {"margin": final_margins(rs), "quartiles": last_quartiles(rs),
                                   "test_accuracy": {int(r["seed"]): 100 * r["test_accuracy"] for r in rs
                                                     if not r["diverged"]},
                                   "train_loss": [r["train_loss"] for r in rs if not r["diverged"]],
                                   "reached": sum(r["reached_target"] for r in rs), "runs": len(rs),
                                   "epochs_run": [r["epochs_run"] for r in rs],
                                   "decay_epoch": [r["decay_epoch"] for r in rs],
                                   "curves": mean_curves(rs)}
                          for length, rs in by_length.items()}}


def verdicts(analysis: dict) -> list[Claim]:
    short, long = analysis["lengths"][0], analysis["lengths"][-1]
    a, b = analysis["by_length"][long], analysis["by_length"][short]
    compared = Comparability(**analysis["compared"])
    name = f"{long} − {short} extra epochs"
    margin = paired_difference(a["margin"], b["margin"], name=f"{name}: inter-quartile mean margin at the stop")
    accuracy = paired_difference(a["test_accuracy"], b["test_accuracy"], name=f"{name}: test accuracy (points)")
    reached = f"reached the target: {long} extra {a['reached']} of {a['runs']}, {short} extra {b['reached']} of " \
              f"{b['runs']}"
    return [(f"A longer extended exploration ({long} against {short} extra epochs) leaves larger normalized margins "
             "at the same training loss", verdict(margin, "greater", comparability=compared),
             f"margins: {long} extra {summarize(a['margin'].values()).text()}, {short} extra "
             f"{summarize(b['margin'].values()).text()}; {reached}"),
            (f"A longer extended exploration ({long} against {short} extra epochs) ends with a higher test accuracy "
             "at the same training loss", verdict(accuracy, "greater", comparability=compared),
             f"test accuracy (%): {long} extra {summarize(a['test_accuracy'].values()).text(digits=3)}, {short} extra "
             f"{summarize(b['test_accuracy'].values()).text(digits=3)}; {reached}")]


def rows(analysis: dict) -> list[str]:
    out = ["| extra exploration epochs | decay after epoch (per seed) | epochs run | reached the target | clean "
           "train loss at the stop | q1 | median | q3 | inter-quartile mean margin, mean ± std | test accuracy (%) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for length, a in analysis["by_length"].items():
        q = {name: summarize(a["quartiles"][name].values()) for name in QUARTILES}
        out.append(f"| {length} | {', '.join('never' if d is None else str(d) for d in a['decay_epoch'])} | "
                   f"{', '.join(map(str, a['epochs_run']))} | {a['reached']} of {a['runs']} | "
                   f"{summarize(a['train_loss']).text(digits=3)} | "
                   + " | ".join(f"{q[name].mean:.4f}" for name in QUARTILES[:3])
                   + f" | {q['margin_mean'].text()} | {summarize(a['test_accuracy'].values()).text(digits=3)} |")
    return out


def plot(analysis: dict, path) -> None:
    fig, axes = style.new_figure(3, "Margins against the length of the extended exploration (at the stop: the same "
                                 "clean training loss where reached)", width=4.6, height=3.8)
    lengths = analysis["lengths"]
    colors = dict(zip(lengths, ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:brown")))
    for length in lengths:
        a = analysis["by_length"][length]
        for name, marker in (("margin_q1", "v"), ("margin_mean", "o"), ("margin_q3", "^")):
            values = list(a["quartiles"][name].values())
            axes[0].scatter([length] * len(values), values, color=colors[length], marker=marker, alpha=0.6, s=18)
        accuracy = list(a["test_accuracy"].values())
        axes[1].scatter([length] * len(accuracy), accuracy, color=colors[length], alpha=0.6, s=18)
        c = a["curves"]
        if c["epoch"]:
            axes[2].plot(c["epoch"], c["margin_mean"], color=colors[length], label=f"{length} extra epochs")
    for ax, key in ((axes[0], "margin_mean"), (axes[1], None)):
        means = [summarize((analysis["by_length"][n]["quartiles"][key] if key else
                            analysis["by_length"][n]["test_accuracy"]).values()).mean for n in lengths]
        ax.plot(lengths, means, color="black", linewidth=1, label="mean over seeds")
    axes[0].set(xlabel="extra exploration epochs", ylabel="normalized margin at the stop",
                title="q1 (▽), inter-quartile mean (○), q3 (△)")
    axes[1].set(xlabel="extra exploration epochs", ylabel="test accuracy (%)", title="Test accuracy at the stop")
    axes[2].set(xlabel=style.EPOCH_LABEL, ylabel="inter-quartile mean margin",
                title="Margin over training (mean to the shortest run)")
    axes[0].set_xticks(lengths)
    axes[1].set_xticks(lengths)
    axes[2].legend()
    style.integer_epochs(axes[2])
    style.save(fig, path)

