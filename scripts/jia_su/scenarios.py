"""Seed 004 §7.1, Figures 1–3: do γ̂ and the other metrics of a minimum track the test error across the settings of
three scenarios (I: confusion-set size, II: augmentation, III: batch size)?

Each scenario is one sweep over its axis (the default setting is trained once, in the `default` sweep, and shared by
the three scenarios and the regularizer part). Claims, per scenario: the setting changes the test error as the paper
says (I: more confusion, II: less augmentation, III: larger batches all raise it); each metric tracks the test error
(Kendall's τ_b > 0 across the runs) where the paper's figure says it does and fails where it says it fails; every
model ends at a near-zero training loss (the paper's premise).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from reproduction import claim_lines, command_lines, new_figure, save_figure

from jia_su import setup
from tfregimes.base.run_dir import write_atomically
from tfregimes.report.ranking import kendall
from tfregimes.results.table import markdown_table

SCENARIOS = {  # part name -> (axis flag, title, the paper's figure)
    "confusion": ("confusion_size", "Scenario I: size of the confusion set", "Figure 1"),
    "augmentation": ("augment", "Scenario II: data augmentation", "Figure 2"),
    "batch_size": ("batch_size", "Scenario III: batch size", "Figure 3"),
}
NOT_MEASURED = "not measured (fewer than 3 runs, or runs of one setting only)"
# Where the test error should rise along each axis's order (the paper's finding).
WORSE_ALONG = {"confusion_size": "larger confusion set", "augment": "weaker augmentation (reversed order)",
               "batch_size": "larger batch"}


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


def error_trend(summary: list[dict], axis: str) -> float:
    """Kendall's τ between the setting's position and its mean test error, signed so that > 0 is the paper's trend."""
    positions = np.arange(len(summary), dtype=float)
    errors = np.array([s["test_error"]["mean"] for s in summary])
    tau, _, _ = kendall(positions, errors)
    return -tau if axis == "augment" else tau


def verdicts(axis: str, summary: list[dict], ranks: list[dict]) -> list[tuple[str, str, str]]:
    trend = error_trend(summary, axis)
    errors = ", ".join(f"{s['setting']}: {s['test_error']['mean']:.2f} ± {s['test_error']['std']:.2f} %"
                       for s in summary)
    out = [(f"The test error rises with a {WORSE_ALONG[axis]}",
            NOT_MEASURED if not np.isfinite(trend) else
            ("holds" if trend == 1.0 else ("partly" if trend > 0 else "does not hold")),
            f"test error per setting {errors}; τ(setting order, mean error) = {trend:+.2f}")]
    for r in ranks:
        expected = setup.PAPER_CAPTURES[axis][r["metric"]]
        tracks = np.isfinite(r["tau_runs"]) and r["tau_runs"] > 0 and r["p_runs"] < 0.05
        weak = np.isfinite(r["tau_runs"]) and r["tau_runs"] > 0
        numbers = (f"τ over runs {r['tau_runs']:+.2f} (p = {r['p_runs']:.3g}, n = {r['n_runs']}), over setting "
                   f"means {r['tau_means']:+.2f} (n = {r['n_means']})")
        label = setup.METRIC_LABELS[r["metric"]]
        if not np.isfinite(r["tau_runs"]) or sum(1 for entry in summary if entry["n"]) < 2:
            verdict = NOT_MEASURED
        elif expected:
            verdict = "holds" if tracks else ("partly" if weak else "does not hold")
        else:
            verdict = "holds" if not weak else ("partly" if not tracks else "does not hold")
        claim = "tracks the test error (paper: it does)" if expected else \
            "fails to track the test error (paper: it fails)"
        out.append((f"{label} {claim}", verdict, numbers))
    losses = [v for s in summary for v in s["train_loss"]["values"]]
    reached = sum(s["reached_target"] for s in summary)
    total = sum(s["n"] for s in summary)
    short = [str(s["setting"]) for s in summary if s["reached_target"] < s["n"]]
    out.append(("Every model ends at a near-zero, similar training loss (the paper's premise)",
                "holds" if reached == total and max(losses, default=np.inf) < 0.05 else
                ("partly" if reached > 0 else "does not hold"),
                f"{reached} of {total} models reached the stop at 99.9 % clean training accuracy"
                + (f" (not all in: {', '.join(short)})" if short else "")
                + f"; final clean training loss {min(losses, default=np.nan):.4f} to "
                  f"{max(losses, default=np.nan):.4f}"))
    return out


def plot(axis: str, title: str, summary: list[dict], path: Path) -> None:
    panels = ("test_error", *setup.METRICS)
    fig, axes = new_figure(1, len(panels), figsize=(3.0 * len(panels), 3.0))
    x = np.arange(len(summary))
    for ax, column in zip(axes, panels):
        mean = np.array([s[column]["mean"] for s in summary])
        std = np.array([s[column]["std"] for s in summary])
        ax.plot(x, mean, "o-", color="C0" if column == "test_error" else "C1")
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, color="C0" if column == "test_error" else "C1")
        ax.set_xticks(x, [str(s["setting"]) for s in summary], rotation=30, fontsize=8)
        ax.set_title("test error (%)" if column == "test_error" else setup.METRIC_LABELS[column], fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: mean ± 1 std over seeds (x: {axis})", fontsize=10)
    save_figure(fig, path, dpi=72)


def _fmt(entry: dict, digits: int = 3) -> str:
    if not np.isfinite(entry["mean"]):
        return "—"
    return f"{entry['mean']:.{digits}g} ± {entry['std']:.2g}"


def tables(summary: list[dict], ranks: list[dict]) -> list[str]:
    header = ["setting", "n", "test error (%)", "train loss (clean)", "last-epoch loss (fit set)", "reached / epochs",
              *[setup.METRIC_LABELS[m] for m in setup.METRICS]]
    rows = [[str(s["setting"]), str(s["n"]), f"{s['test_error']['mean']:.2f} ± {s['test_error']['std']:.2f}",
             _fmt(s["train_loss"]), _fmt(s["last_epoch_train_loss"]),
             f"{s['reached_target']} / {','.join(str(e) for e in s['epochs'])}",
             *[_fmt(s[m], 4) for m in setup.METRICS]] for s in summary]
    tau_rows = [[setup.METRIC_LABELS[r["metric"]], f"{r['tau_runs']:+.2f}", f"{r['p_runs']:.3g}", str(r["n_runs"]),
                 f"{r['tau_means']:+.2f}"] for r in ranks]
    return [markdown_table(header, rows), "",
            "Kendall's τ_b against the test error (tfregimes.report's measure ranking over the runs; and over the "
            "settings' means):", "",
            markdown_table(["metric", "τ (runs)", "p", "n", "τ (setting means)"], tau_rows)]


def run(part: str, output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path, log=print,
        parallel: int | None = None, train: bool = True) -> list[tuple[str, str, str]]:
    axis, title, figure = SCENARIOS[part]
    size = setup.sizes(smoke, parallel)
    started = time.time()
    commands = sweeps(axis, size, work_dir)
    if train:
        setup.run_sweeps(commands, log)
    df = setup.read_runs([work_dir / name for name in commands])
    summary = setup.summarize(df, axis, axis_values(axis, size))
    ranks = setup.ranking(df[df[axis].isin(axis_values(axis, size))], summary)
    found = verdicts(axis, summary, ranks)
    output.mkdir(parents=True, exist_ok=True)
    plot(axis, title, summary, output / f"{part}.png")
    write_atomically(output / f"{part}.json", json.dumps({"axis": axis, "summary": summary, "ranking": ranks,
                                                           "verdicts": found}, indent=1))
    train_minutes = float(df["wall_seconds"].sum()) / 60
    text = "\n".join([
        f"## {title} ({figure})", "",
        f"Command: `{command}`. The {len(df)} models' training took {train_minutes:.1f} min of wall time in all "
        f"(2 shared CPU cores; the default setting's models are shared with the other parts); this invocation took "
        f"{(time.time() - started) / 60:.1f} min. Its sweeps (rerunning one resumes it):", "",
        *command_lines(commands.values()), "",
        *tables(summary, ranks), "", f"![{part}]({part}.png)", "", *claim_lines(found)])
    write_atomically(output / f"{part}.md", text)
    return found
