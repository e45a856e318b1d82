"""Seed 001 §4.2 Figure 7 at CPU scale: two independent phases against the three-stage step schedule.

Appendix C.7's optimizers on our small setting (MNIST-1D, `mlp` (256, 128), batch 64, 20 epochs, weight decay 1e-4,
no augmentation), every run made by `python -m tfregimes.sweep`:
- baseline: "the default three stages schedule" with constant μ = 0.9: η = 0.1, ×0.1 at epochs 10 and 15, 3 seeds;
- two phases: phase 1 SGD at a constant large step, with momentum (η = 0.1, μ = 0.9; C.5) or without it
  (η = 0.9237, μ = 0: C.7's rate matched to the momentum run, appendix B); phase 2 a fresh SGD with η = 0.005,
  μ = 0.95 (C.7); the transition epoch drawn at random (the same draws for both, so the two are paired).
Claims: the two-phase schedule matches or beats the three-stage one for at least one transition epoch (median per
bin of transition epochs, as the paper bins CIFAR-10's); momentum in phase 1 makes no difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from reproduction import claim_lines, command_lines, new_figure, save_figure

from tfregimes.base.run_dir import write_atomically
from tfregimes.results import collect

PHASE1 = {"with_momentum": ["--learning_rate=0.1", "--momentum=0.9"],  # Seed 001 C.5.
          "without_momentum": ["--learning_rate=0.9236708571873865", "--momentum=0"]}  # Seed 001 C.7.
BINS = 4


def sweep_commands(work_dir: Path, smoke: bool, seed: int) -> dict[str, list[str]]:
    epochs, draws = (4, 1) if smoke else (20, 12)
    common = ["--dataset=mnist1d", "--model=mlp", f"--epochs={epochs}", "--batch_size=64", "--optimizer=sgd",
              "--weight_decay=1e-4", "--verbose=0"] + (["--train_subset=128"] if smoke else [])
    boundaries = "2,3" if smoke else "10,15"  # The stage lengths are not in our copy: 50 % and 75 % of the run.
    seeds = str(seed) if smoke else f"{seed},{seed + 1},{seed + 2}"
    commands = {"baseline": [*common, "--learning_rate=0.1", "--momentum=0.9", "--lr_schedule=step",
                             f"--lr_boundaries={boundaries}", "--lr_decay=0.1", f"--seeds={seeds}"]}
    for name, phase1 in PHASE1.items():
        commands[name] = [*common, *phase1, "--lr_schedule=constant", "--phase2_optimizer=sgd",
                          "--phase2_learning_rate=0.005", "--phase2_momentum=0.95", "--phase2_lr_schedule=constant",
                          f"--grid=transition_epoch=1:{epochs - 1}", f"--sample={draws}", f"--sample_seed={seed}",
                          f"--seeds={seed}"]
    return {name: [sys.executable, "-m", "tfregimes.sweep", *args, f"--sweep_dir={work_dir / name}"]
            for name, args in commands.items()}


def read_sweep(sweep_dir: Path) -> list[dict]:
    """(transition epoch, test accuracy, diverged, wall seconds) of every point, as `tfregimes.results` reads it."""
    df = collect([sweep_dir])
    return [{"name": row["run"],
             "transition_epoch": int(row["transition_epoch"]) if "transition_epoch" in df.columns else 0,
             "seed": int(row["seed"]), "diverged": bool(row["diverged"]),
             "test_accuracy": None if row["diverged"] else float(row["test_accuracy"]),
             "wall_seconds": float(row["wall_seconds"])} for _, row in df.iterrows()]


def bin_medians(runs: list[dict], epochs: int, bins: int = BINS) -> list[dict]:
    """Median test accuracy per equal-width bin of transition epochs over [1, epochs − 1] (diverged runs left out)."""
    edges = np.linspace(1, epochs - 1, bins + 1)
    out = []
    for i, (low, high) in enumerate(zip(edges, edges[1:])):
        last = i == bins - 1
        values = [r["test_accuracy"] for r in runs if not r["diverged"]
                  and low <= r["transition_epoch"] and (r["transition_epoch"] <= high if last
                                                        else r["transition_epoch"] < high)]
        out.append({"low": float(low), "high": float(high), "count": len(values),
                    "median": float(np.median(values)) if values else float("nan")})
    return out


def analyse(runs: dict[str, list[dict]], epochs: int) -> dict:
    baseline = [r["test_accuracy"] for r in runs["baseline"] if not r["diverged"]]
    variants = {name: bin_medians(runs[name], epochs) for name in PHASE1}
    paired = {r["transition_epoch"]: r["test_accuracy"] for r in runs["without_momentum"] if not r["diverged"]}
    differences = [r["test_accuracy"] - paired[r["transition_epoch"]] for r in runs["with_momentum"]
                   if not r["diverged"] and r["transition_epoch"] in paired]
    return {"epochs": epochs, "baseline": {"accuracies": baseline, "median": float(np.median(baseline)),
                                           "std": float(np.std(baseline, ddof=1)) if len(baseline) > 1 else 0.0},
            "bins": variants, "paired_difference": {
                "values": differences, "mean": float(np.mean(differences)) if differences else float("nan"),
                "std": float(np.std(differences, ddof=1)) if len(differences) > 1 else float("nan")}}


def verdicts(analysis: dict) -> list[tuple[str, str, str]]:
    base = analysis["baseline"]
    best = {name: max((b["median"] for b in bins if np.isfinite(b["median"])), default=float("nan"))
            for name, bins in analysis["bins"].items()}
    beats = all(v >= base["median"] for v in best.values())
    close = all(v >= min(base["accuracies"]) for v in best.values())
    out = [("The two-phase schedule matches or beats the three-stage schedule for at least one transition epoch",
            "holds" if beats else ("partly" if close else "does not hold"),
            f"three-stage median {100 * base['median']:.1f} % (seeds "
            f"{', '.join(f'{100 * a:.1f}' for a in base['accuracies'])}); "
            "best bin median " + ", ".join(f"{name.replace('_', ' ')}: {100 * v:.1f} %" for name, v in best.items()))]
    diff = analysis["paired_difference"]
    noise = base["std"]
    same = np.isfinite(diff["mean"]) and abs(diff["mean"]) <= max(noise, 1e-12)
    out.append(("Momentum in phase 1 makes no difference (with the learning rate matched)",
                "holds" if same else "does not hold",
                f"with − without momentum at the same transition epoch: mean {100 * diff['mean']:+.2f} points "
                f"(std {100 * diff['std']:.2f}, {len(diff['values'])} pairs); the three-stage runs' seed-to-seed std "
                f"is {100 * noise:.2f} points"))
    return out


def plot(analysis: dict, runs: dict[str, list[dict]], path: Path) -> None:
    fig, ax = new_figure(figsize=(7.5, 4.5))
    base = analysis["baseline"]
    ax.axhspan(100 * min(base["accuracies"]), 100 * max(base["accuracies"]), color="gray", alpha=0.25,
               label="three-stage schedule (range over seeds)")
    ax.axhline(100 * base["median"], color="gray", linestyle="--", label="three-stage median")
    for name, marker in zip(PHASE1, "os"):
        done = [r for r in runs[name] if not r["diverged"]]
        dots, = ax.plot([r["transition_epoch"] for r in done], [100 * r["test_accuracy"] for r in done], marker,
                        alpha=0.6, label=f"two phases, {name.replace('_', ' ')} in phase 1")
        for b in analysis["bins"][name]:
            ax.hlines(100 * b["median"], b["low"], b["high"], color=dots.get_color(), linewidth=2.5)
    ax.set(xlabel="transition epoch", ylabel="test accuracy (%)",
           title="Two phases vs three stages, medians per bin as bars (seed 001 Fig. 7)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path) -> list[tuple[str, str, str]]:
    started = time.time()
    commands = sweep_commands(work_dir, smoke, seed)
    for argv in commands.values():
        print(f"[two_phase] {' '.join(argv[1:])}", flush=True)
        subprocess.run(argv, check=True)  # A failed point fails the part: its log is in the sweep directory.
    runs = {name: read_sweep(work_dir / name) for name in commands}
    epochs = 4 if smoke else 20
    analysis = analyse(runs, epochs)
    output.mkdir(parents=True, exist_ok=True)
    plot(analysis, runs, output / "two_phase.png")
    write_atomically(output / "two_phase.json", json.dumps({"analysis": analysis, "runs": runs}))
    rows = ["| transition epochs | " + " | ".join(f"{n.replace('_', ' ')}: median test acc. (%), n" for n in PHASE1)
            + " |", "|---|---|---|"]
    for i, b in enumerate(analysis["bins"]["with_momentum"]):
        cells = [analysis["bins"][n][i] for n in PHASE1]
        rows.append(f"| {b['low']:.1f}–{b['high']:.1f} | "
                    + " | ".join(f"{100 * c['median']:.1f}, {c['count']}" if c["count"] else "no draw, 0"
                                 for c in cells) + " |")
    train_minutes = sum(r["wall_seconds"] for rs in runs.values() for r in rs) / 60
    text = "\n".join([
        "## Two phases against three stages (§4.2, Figure 7; appendix C.7)", "",
        f"Command: `{command}`. The {sum(len(r) for r in runs.values())} runs took {train_minutes:.1f} min of wall "
        f"time in all (2 shared CPU cores); this invocation took {(time.time() - started) / 60:.1f} min. It ran "
        "these sweeps (rerunning one resumes it):", "", *command_lines(commands.values()), "",
        __doc__.split("\n\n", 1)[1].split("Claims:")[0].strip(), "",
        *rows, "", "![two phases](two_phase.png)", "", *claim_lines(verdicts(analysis))])
    write_atomically(output / "two_phase.md", text)
    return verdicts(analysis)
