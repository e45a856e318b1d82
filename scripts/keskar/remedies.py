"""Seed 003 Tables 6–7 at CPU scale: two remedies for large-batch training, applied to LB.

- Data augmentation (Table 6): LB with `--augment=crop1_flip` (zero-pad by 1 pixel, random crop, horizontal flip;
  the paper augments the CIFAR networks with rotations, translations and flips, which tfregimes does not have).
  Its training accuracy, and so the stop, is measured on the augmented batches.
- Conservative training (Table 7, appendix E.2): LB with `--regularizer=proximal`, each batch's step the third Adam
  iterate on min_x f_B(x) + λ/2‖x − x_k‖² (tfregimes' defaults λ = 1e-3, K = 3; the paper's λ is not in our copy).
The SB and plain LB runs they are compared with are the table part's (the same sweep, reused).
Claims (the paper's): both remedies raise LB's test accuracy to about SB's, yet the LB minima stay sharp (Tables
6–7 list sharpness far above SB's). The question asked here too: do they lower sharpness, and the gap?
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from reproduction import command_lines, new_figure, save_figure

from keskar.common import (
    Setting,
    describe,
    group,
    pm,
    read_rows,
    start_part,
    summary,
    sweep_command,
    write_part,
)

TABLE_KEYS = ("full_eps1e-3", "full_eps5e-4")  # The sharpness Tables 6–7 list.


def remedy_flags(augment: str, large_batch: int) -> dict[str, list[str]]:
    return {"augmented": [f"--batch_size={large_batch}", f"--augment={augment}"],
            "conservative": [f"--batch_size={large_batch}", "--regularizer=proximal"]}


def remedy_sweeps(config: Setting, work_dir: Path) -> dict[str, list[str]]:
    """One sweep per remedy, each LB with the shared sweep's flags and seeds."""
    return {name: sweep_command(config, work_dir / name, flags)
            for name, flags in remedy_flags(config.augment, config.large_batch).items()}


def analyse(groups: dict[str, list[dict]]) -> dict:
    """`groups`: the finished runs of sb, lb and each remedy."""
    out = {name: summary(runs) for name, runs in groups.items()}
    sb_test = out["sb"]["test_accuracy"][0]
    for name in groups:
        if name != "sb":
            out[name]["gap_to_sb"] = sb_test - out[name]["test_accuracy"][0]
    return out


def verdicts(analysis: dict) -> list[tuple[str, str, str]]:
    out = []
    lb_gap = analysis["lb"]["gap_to_sb"]
    for name, table in (("augmented", "Table 6"), ("conservative", "Table 7")):
        remedy = analysis[name]
        if not remedy["runs"]:
            out.append((f"{name.capitalize()} LB (Table {table[-1]})", "not run", "no finished run"))
            continue
        gap = remedy["gap_to_sb"]
        closes = np.isfinite(gap) and gap < lb_gap
        verdict = ("holds" if closes and gap <= max(lb_gap / 2, 0) else "partly" if closes else "does not hold")
        # The paper compares minima at the same (near-100 %) training accuracy: a remedy whose runs stopped short of
        # the target is compared at another point of training, so it can support the claim only partly.
        short = remedy["reached"] < remedy["runs"]
        # A gap no larger than the seed-to-seed spread of SB's and LB's test accuracy leaves little to close.
        noise = max(analysis["sb"]["test_accuracy"][1], analysis["lb"]["test_accuracy"][1])
        within_noise = lb_gap <= noise
        verdict = "partly" if (short or within_noise) and verdict == "holds" else verdict
        out.append((f"{name.capitalize()} LB raises test accuracy towards SB's ({table})", verdict,
                    f"test accuracy SB {pm(analysis['sb']['test_accuracy'], 100)} %, LB "
                    f"{pm(analysis['lb']['test_accuracy'], 100)} %, {name} LB {pm(remedy['test_accuracy'], 100)} % "
                    f"(gap to SB {100 * lb_gap:+.2f} → {100 * gap:+.2f} points; reached the target "
                    f"{remedy['reached']}/{remedy['runs']}, epochs {pm(remedy['epochs_run'], digits=1)}"
                    + (f"; train accuracy {pm(remedy['train_accuracy'], 100)} %: not at the target, so not the "
                       "paper's comparison" if short else "")
                    + (f"; the SB–LB gap is within the seeds' spread ({100 * noise:.2f} points)" if within_noise
                       else "") + ")"))
        sharp = [remedy["sharpness"][k][0] for k in TABLE_KEYS]
        sb_sharp = [analysis["sb"]["sharpness"][k][0] for k in TABLE_KEYS]
        lb_sharp = [analysis["lb"]["sharpness"][k][0] for k in TABLE_KEYS]
        stays = all(s > 2 * b for s, b in zip(sharp, sb_sharp))
        verdict = "holds" if stays else "partly" if any(s > b for s, b in zip(sharp, sb_sharp)) else "does not hold"
        out.append((f"{name.capitalize()} LB minima stay sharp, far above SB's ({table})",
                    "partly" if short and verdict == "holds" else verdict,
                    "; ".join(f"{k}: SB {sb:.3g}, LB {lb:.3g}, {name} LB {pm(remedy['sharpness'][k])}"
                              for k, sb, lb in zip(TABLE_KEYS, sb_sharp, lb_sharp))
                    + " (more than twice SB's counts as far above; lower than plain LB's: "
                    + ", ".join(f"{k} {'yes' if s < lb else 'no'}" for k, s, lb in zip(TABLE_KEYS, sharp, lb_sharp))
                    + ")"))
    return out


def plot(analysis: dict, path: Path) -> None:
    names = [n for n in ("sb", "lb", "augmented", "conservative") if n in analysis]
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    x = np.arange(len(names))
    for i, key in enumerate(TABLE_KEYS):
        means, stds = zip(*(analysis[n]["sharpness"][key] for n in names))
        axes[0].bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=key)
    axes[0].set(yscale="log", ylabel="ε-sharpness φ (%)", title="Sharpness of the minimum (seed 003 Tables 6–7)")
    means, stds = zip(*(analysis[n]["test_accuracy"] for n in names))
    axes[1].bar(x, 100 * np.array(means), 0.6, yerr=100 * np.array(stds), capsize=3, color="tab:red")
    low = 100 * min(m - s for m, s in zip(means, stds) if np.isfinite(m))
    axes[1].set(ylim=(low - 1, None), ylabel="test accuracy (%)", title="Test accuracy")
    for ax in axes:
        ax.set_xticks(x, [n if n in ("augmented", "conservative") else n.upper() for n in names])
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[tuple[str, str, str]]:
    started, config, commands = start_part("remedies", smoke=smoke, seed=seed, work_dir=work_dir, train=train,
                                           own_sweeps=remedy_sweeps)
    base = read_rows(work_dir / "sb_lb")
    rows = {"sb": group(base, batch_size=config.small_batch), "lb": group(base, batch_size=config.large_batch),
            **{name: group(read_rows(work_dir / name)) for name in commands if name != "sb_lb"}}
    analysis = analyse(rows)
    table = ["| | runs (reached target) | epochs run | train acc. (%) | test acc. (%) | "
             + " | ".join(f"φ {key}" for key in TABLE_KEYS) + " | weight norm |", "|---" * (6 + len(TABLE_KEYS)) + "|"]
    for name, s in analysis.items():
        table.append(f"| {name if name in ('augmented', 'conservative') else name.upper()} | {s['runs']} "
                     f"({s['reached']}) | {pm(s['epochs_run'], digits=1)} | {pm(s['train_accuracy'], 100)} | "
                     f"{pm(s['test_accuracy'], 100)} | " + " | ".join(pm(s["sharpness"][k]) for k in TABLE_KEYS)
                     + f" | {pm(s['weight_norm'], digits=1)} |")
    minutes = sum(r["wall_seconds"] or 0 for runs in rows.values() for r in runs) / 60

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## Remedies for LB: data augmentation and conservative training (Tables 6–7)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 shared CPU cores. "
            f"{sum(len(r) for r in rows.values())} runs ({minutes:.1f} min of training wall time in all). It ran (the "
            "first is the table "
            "part's sweep, reused):", "", *command_lines(commands.values()), "",
            describe(config), "", __doc__.split("\n\n", 1)[1].split("Claims")[0].strip(), "",
            *table, ""]

    return write_part(output, "remedies", started=started, command=command, train=train, analysis=analysis,
                      runs=rows, claims=verdicts(analysis), plot=lambda path: plot(analysis, path),
                      figure=("remedies.png", "remedies"), section=section)
