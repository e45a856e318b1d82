"""Seed 003 Table 7: conservative training, a remedy for large-batch training, applied to LB.

- Conservative training (Table 7, appendix E.2): LB with `--regularizer=proximal`, each batch's step the third Adam
  iterate on min_x f_B(x) + λ/2‖x − x_k‖² (tfregimes' defaults λ = 1e-3, K = 3; the paper's λ is not in our copy),
  trained to the same clean training loss as SB and LB (equal loss), on the setting's remedy_seeds.
- Data augmentation (Table 6) has no row here: the paper applies it to the convolutional networks C1–C4 only (its
  Table 6 lists no F network), and this page's network is F1.
The SB and plain LB runs it is compared with are the table part's (the same sweep, reused).
Claims (the paper's): it raises LB's test accuracy (paired by seed with plain LB), yet the LB minima stay sharper
than SB's (Table 7 lists sharpness far above SB's; paired by seed with SB). How the remedy's sharpness compares with
plain LB's, and the test accuracy still missing to SB's, are given beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from reproduction import Claim, command_lines
from sweeps import Sweep

from keskar.common import (
    Setting,
    by_seed,
    describe,
    group,
    read_rows,
    sharpness_log_ratio,
    start_part,
    stopped_alike,
    summary,
    sweep,
    test_points,
    write_part,
)
from tfregimes.analysis import paired_difference, verdict
from tfregimes.report import style

TABLE_KEYS = ("full_eps1e-3", "full_eps5e-4")  # The sharpness Tables 6–7 list.


def remedy_flags(large_batch: int) -> dict[str, dict[str, str]]:
    return {"conservative": {"batch_size": str(large_batch), "regularizer": "proximal"}}


def remedy_sweeps(config: Setting, work_dir: Path) -> dict[str, Sweep]:
    """One sweep per remedy, each LB with the shared sweep's flags, on the remedy seeds."""
    return {name: sweep(config, work_dir / name, seeds=config.remedy_seeds, **flags)
            for name, flags in remedy_flags(config.large_batch).items()}


def analyse(groups: dict[str, list[dict]]) -> dict:
    """`groups`: the finished runs of sb, lb and each remedy; their tables' summaries."""
    return {name: summary(runs) for name, runs in groups.items()}


def claims(groups: dict[str, list[dict]]) -> list[Claim]:
    """Per remedy: its test accuracy against plain LB's, and its sharpness against SB's (one claim per ε), each
    paired by seed and compared at the same stop target. A remedy without finished runs is not comparable (n = 0)."""
    sb, lb = groups["sb"], groups["lb"]
    summaries = analyse(groups)
    out = []
    for name, table in (("conservative", "Table 7"),):
        runs, remedy = groups.get(name, []), summaries.get(name) or summary([])
        raised = paired_difference(by_seed(runs, test_points), by_seed(lb, test_points),
                                   name=f"mean test accuracy difference {name} LB − LB (points)")
        missing = paired_difference(by_seed(sb, test_points), by_seed(runs, test_points),
                                    name=f"mean test accuracy difference SB − {name} LB (points)")
        out.append((f"{name.capitalize()} LB raises the test accuracy above plain LB's ({table})",
                    verdict(raised, "greater", comparability=stopped_alike(runs, lb)),
                    f"test accuracy (%) SB {summaries['sb']['test_accuracy'].text(100)}, LB "
                    f"{summaries['lb']['test_accuracy'].text(100)}, {name} LB {remedy['test_accuracy'].text(100)}; "
                    f"still missing to SB: {missing.text()}; {name} LB reached the target "
                    f"{remedy['reached']}/{remedy['runs']}, train accuracy (%) {remedy['train_accuracy'].text(100)}"))
        for key in TABLE_KEYS:
            sharper = sharpness_log_ratio(runs, sb, key, f"φ_{name} / φ_SB")
            against_lb = sharpness_log_ratio(runs, lb, key, f"φ_{name} / φ_LB")
            out.append((f"{name.capitalize()} LB minima stay sharper than SB's: φ {key} ({table})",
                        verdict(sharper, "greater", comparability=stopped_alike(runs, sb)),
                        f"φ {key}: SB {summaries['sb']['sharpness'][key].text()}, LB "
                        f"{summaries['lb']['sharpness'][key].text()}, {name} LB {remedy['sharpness'][key].text()}; "
                        f"against plain LB: {against_lb.text()}"))
    return out


def plot(analysis: dict, path: Path) -> None:
    names = [n for n in ("sb", "lb", "conservative") if n in analysis]
    fig, axes = style.new_figure(2, "Conservative training of LB (seed 003 Table 7)", width=5.5, height=4)
    x = np.arange(len(names))
    for i, key in enumerate(TABLE_KEYS):
        values = [analysis[n]["sharpness"][key] for n in names]
        axes[0].bar(x + (i - 0.5) * 0.38, [v.mean for v in values], 0.38,
                    yerr=np.nan_to_num([v.std for v in values]), capsize=3, label=key)
    axes[0].set(yscale="log", ylabel="ε-sharpness φ (%)", title="Sharpness of the minimum")
    means = 100 * np.array([analysis[n]["test_accuracy"].mean for n in names])
    stds = 100 * np.nan_to_num([analysis[n]["test_accuracy"].std for n in names])
    axes[1].bar(x, means, 0.6, yerr=stds, capsize=3, color="tab:red")
    low = min((m - s for m, s in zip(means, stds) if np.isfinite(m)), default=0.0)
    axes[1].set(ylim=(low - 1, None), ylabel="test accuracy (%)", title="Test accuracy")
    for ax in axes:
        ax.set_xticks(x, [n if n == "conservative" else n.upper() for n in names])
    axes[0].legend()
    style.save(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[Claim]:
    started, config, commands = start_part("remedies", smoke=smoke, seed=seed, work_dir=work_dir, train=train,
                                           own_sweeps=remedy_sweeps)
    base = read_rows(work_dir / "sb_lb")
    rows = {"sb": group(base, batch_size=config.small_batch), "lb": group(base, batch_size=config.large_batch),
            **{name: group(read_rows(work_dir / name)) for name in commands if name != "sb_lb"}}
    analysis = analyse(rows)
    table = ["| | runs (reached target) | epochs run | train acc. (%) | test acc. (%) | "
             + " | ".join(f"φ {key}" for key in TABLE_KEYS) + " | weight norm |", "|---" * (6 + len(TABLE_KEYS)) + "|"]
    for name, s in analysis.items():
        table.append(f"| {name if name == 'conservative' else name.upper()} | {s['runs']} "
                     f"({s['reached']}) | {s['epochs_run'].text(digits=3)} | {s['train_accuracy'].text(100)} | "
                     f"{s['test_accuracy'].text(100)} | " + " | ".join(s["sharpness"][k].text() for k in TABLE_KEYS)
                     + f" | {s['weight_norm'].text()} |")
    minutes = sum(r["wall_seconds"] or 0 for runs in rows.values() for r in runs) / 60

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## Remedies for LB: conservative training (Table 7); no augmented row (Table 6)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 shared CPU cores. "
            f"{sum(len(r) for r in rows.values())} runs ({minutes:.1f} min of training wall time in all). It ran (the "
            "first is the table "
            "part's sweep, reused):", "", *command_lines(s.command() for s in commands.values()), "",
            describe(config), "", __doc__.split("\n\n", 1)[1].split("Claims")[0].strip(), "",
            *table, ""]

    return write_part(output, "remedies", work_dir=work_dir, started=started, command=command, train=train,
                      analysis=analysis,
                      runs=rows, claims=claims(rows), plot=lambda path: plot(analysis, path),
                      figure=("remedies.png", "remedies"), section=section)
