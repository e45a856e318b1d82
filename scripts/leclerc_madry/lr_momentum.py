"""Seed 001 §3.2 Figure 4 and appendix B at CPU scale: is generalization set by the step size η/(1 − μ)?

Our setting (the paper trains VGG-13-BN on CIFAR-10, appendix C.4; that needs GPUs): MNIST-1D (generated offline,
4,000 / 1,000 examples), tfregimes' `mlp` (256, 128), batch 64, 20 epochs at a constant learning rate, no weight
decay, heavy ball μ ∈ {0, 0.5, 0.9}, η on one 11-point log grid over [1e-3, 10^0.5] shared by every μ, 3 seeds.

- Figure 4's claim: the test-accuracy-against-η curves of the momenta are shifted copies of each other, the shift
  being the factor 1/(1 − μ) by which momentum multiplies the step; so plotted against η/(1 − μ) they coincide
  (they lie closer to the μ = 0 curve than plotted against η) and the best η/(1 − μ) is the same for every μ.
- Appendix B: for each μ, the η whose training-loss curve over the first half of training is closest in L2 to the
  baseline's (μ = 0.9 at its best η) is roughly η_base (1 − μ)/(1 − μ_base).
Each claim is an effect over seeds: every seed's grid is analysed alone (its curves, best η and matches), and the
seeds' values are compared by seed (`tfregimes.analysis`). Every run trains for the same epochs at a constant η:
Figure 4 compares test accuracy after an equal budget, appendix B the loss curves, neither a minimum at a common
training loss.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from reproduction import Claim, claim_lines, new_figure, save_figure
from sweeps import Sweep

from tfregimes.analysis import comparable, mean_effect, paired_difference, summarize, verdict
from tfregimes.base.run_dir import write_atomically
from tfregimes.results import load_runs
from tfregimes.sweep.spec import point_name

MOMENTA = (0.0, 0.5, 0.9)  # Figure 4's three momenta.
BASELINE_MOMENTUM = 0.9
# "The same η" on a log grid: a best η is only located to within one grid step, so one step off is as equal as the
# grid can tell; 1.5 steps (in log10 η) counts one step off as equal and two steps off as different.
STEP_MARGIN = 1.5
SWEEP = "lr_momentum"  # The sweep's directory under --work_dir.


@dataclasses.dataclass(frozen=True)
class Point:
    momentum: float
    learning_rate: float
    seed: int

    @property
    def name(self) -> str:
        """The sweep's name of the point (and of its run directory under the sweep's)."""
        return point_name({"momentum": repr(self.momentum), "learning_rate": repr(self.learning_rate),
                           "seed": str(self.seed)})


@dataclasses.dataclass(frozen=True)
class Setting:
    momenta: tuple[float, ...]
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    epochs: int
    train_subset: int  # 0: all 4,000 training examples.


def setting(smoke: bool, seed: int) -> Setting:
    if smoke:
        return Setting((0.0, BASELINE_MOMENTUM), (1e-2, 1e-1), (seed,), epochs=2, train_subset=128)
    # 3 seeds: the verdict rule needs n >= 3 to compare (2 seeds made every claim "not comparable").
    return Setting(MOMENTA, tuple(float(x) for x in np.logspace(-3, 0.5, 11)), (seed, seed + 1, seed + 2), epochs=20,
                   train_subset=0)


def sweep(grid: Setting, work_dir: Path) -> Sweep:
    """Every (μ, η, seed) of the grid, one sweep: mlp on MNIST-1D at a constant η, no weight decay."""
    base = {"dataset": "mnist1d", "model": "mlp", "epochs": grid.epochs, "batch_size": 64, "optimizer": "sgd",
            "weight_decay": 0.0, "lr_schedule": "constant", "train_subset": grid.train_subset, "verbose": 0}
    axes = [f"momentum={','.join(repr(mu) for mu in grid.momenta)}",
            f"learning_rate={','.join(repr(lr) for lr in grid.learning_rates)}"]  # repr: read back as the same float.
    return Sweep.of(base, work_dir / SWEEP, grid=axes, seeds=grid.seeds)


def read_points(sweep: Sweep) -> list[dict]:
    """Every finished run's point, final metrics and per-epoch training losses, from `collect`'s frame and the run's
    history (with --notrain, an interrupted run is left out)."""
    df = sweep.runs()
    if df.empty:
        return []
    records = {str(record.run_dir): record for record in load_runs([sweep.sweep_dir])[0]}
    out = []
    for _, row in df[df["state"].isin(("done", "diverged"))].iterrows():
        history = records[row["run_dir"]].history()
        out.append({"momentum": float(row["momentum"]), "learning_rate": float(row["learning_rate"]),
                    "seed": int(row["seed"]), "diverged": bool(row["diverged"]),
                    "epoch_losses": [float(v) for v in pd.to_numeric(history["loss"], errors="coerce")],
                    "test_accuracy": float(row["test_accuracy"]), "train_accuracy": float(row["train_accuracy"]),
                    "wall_seconds": float(row["wall_seconds"])})
    return out


def mean_accuracy(records: list[dict], momentum: float, learning_rates) -> np.ndarray:
    """Test accuracy per η averaged over the seeds that did not diverge (NaN where every seed diverged)."""
    out = []
    for lr in learning_rates:
        values = [r["test_accuracy"] for r in records if r["momentum"] == momentum and r["learning_rate"] == lr
                  and not r["diverged"]]
        out.append(summarize(values).mean)  # NaN where every seed diverged.
    return np.array(out)


def curve_gap(x_ref, y_ref, x, y) -> float:
    """Mean |y − y_ref(x)| over the points of (x, y) inside the finite part of the reference curve (linear in x)."""
    ok_ref = np.isfinite(y_ref)
    if not ok_ref.any():  # No μ = 0 run finished (--notrain on an interrupted grid): no reference curve.
        return float("nan")
    xr, yr = np.asarray(x_ref)[ok_ref], np.asarray(y_ref)[ok_ref]
    inside = np.isfinite(y) & (x >= xr.min()) & (x <= xr.max())
    return summarize(np.abs(y[inside] - np.interp(x[inside], xr, yr))).mean  # NaN where no point is inside.


def mean_losses(records, momentum, lr, epochs: int) -> np.ndarray | None:
    runs = [r["epoch_losses"][:epochs] for r in records if r["momentum"] == momentum and r["learning_rate"] == lr
            and not r["diverged"] and len(r["epoch_losses"]) >= epochs]
    return np.array([summarize(epoch).mean for epoch in zip(*runs)]) if runs else None


def analyse(records: list[dict], grid: Setting) -> dict:
    """The curves over every seed (the table and figure), and the same analysis of each seed alone (the claims)."""
    seeds = sorted({r["seed"] for r in records})
    return {**analyse_grid(records, grid),
            "per_seed": {str(s): analyse_grid([r for r in records if r["seed"] == s], grid) for s in seeds}}


def analyse_grid(records: list[dict], grid: Setting) -> dict:
    """Best η per μ, the accuracy curves' gaps to μ = 0's against η and against η/(1 − μ), and appendix B's
    matched η, of `records` (one seed's, or every seed's averaged)."""
    lrs = np.array(grid.learning_rates)
    accuracy = {mu: mean_accuracy(records, mu, lrs) for mu in grid.momenta}
    best = {mu: float(lrs[np.nanargmax(acc)]) for mu, acc in accuracy.items() if np.isfinite(acc).any()}
    log_lr = np.log10(lrs)
    gaps = {mu: {"raw": curve_gap(log_lr, accuracy[0.0], log_lr, accuracy[mu]),
                 "effective": curve_gap(log_lr, accuracy[0.0], log_lr - np.log10(1 - mu), accuracy[mu])}
            for mu in grid.momenta if mu != 0.0}
    early = max(1, grid.epochs // 2)  # Appendix B matches the first part of training (50 of the paper's epochs).
    base_lr = best.get(BASELINE_MOMENTUM)
    base_curve = mean_losses(records, BASELINE_MOMENTUM, base_lr, early) if base_lr else None
    matches = {}
    for mu in grid.momenta:
        if mu == BASELINE_MOMENTUM or base_curve is None:
            continue
        distances = {lr: float(np.linalg.norm(c - base_curve)) for lr in lrs
                     if (c := mean_losses(records, mu, lr, early)) is not None}
        if distances:
            matched = min(distances, key=distances.get)
            predicted = base_lr * (1 - mu) / (1 - BASELINE_MOMENTUM)
            matches[mu] = {"matched_lr": float(matched), "predicted_lr": predicted,
                           "ratio": float(matched / predicted), "l2": distances[matched]}
    return {"momenta": list(grid.momenta), "learning_rates": lrs.tolist(),
            "accuracy": {str(mu): acc.tolist() for mu, acc in accuracy.items()},
            "best_lr": {str(mu): lr for mu, lr in best.items()},
            "peak_accuracy": {str(mu): float(np.nanmax(acc)) for mu, acc in accuracy.items() if np.isfinite(acc).any()},
            "best_effective_step": {str(mu): lr / (1 - mu) for mu, lr in best.items()},
            "curve_gap": {str(mu): g for mu, g in gaps.items()}, "early_epochs": early,
            "baseline": {"momentum": BASELINE_MOMENTUM, "learning_rate": base_lr}, "matches": {
                str(mu): m for mu, m in matches.items()}}


def seed_values(analysis: dict, value) -> dict[str, float]:
    """{seed: value(that seed's analysis)}, NaN where it is undefined (the seed's runs all diverged)."""
    out = {}
    for seed, a in analysis["per_seed"].items():
        try:
            out[seed] = float(value(a))
        except (KeyError, ValueError):  # No best η, no match or no μ ≠ 0 curve for this seed.
            out[seed] = float("nan")
    return out


def verdicts(analysis: dict) -> list[Claim]:
    grid_step = np.log10(analysis["learning_rates"][1] / analysis["learning_rates"][0])
    margin = STEP_MARGIN * grid_step
    budget = comparable("every (μ, η) trained for the same epochs at a constant η from the same seeds: Figure 4 "
                        "compares test accuracy after an equal budget and appendix B the loss curves, not minima")
    raw = seed_values(analysis, lambda a: 100 * summarize(g["raw"] for g in a["curve_gap"].values()).mean)
    effective = seed_values(analysis, lambda a: 100 * summarize(g["effective"] for g in a["curve_gap"].values()).mean)
    collapse = paired_difference(raw, effective, name="gap to μ = 0's curve against η − against η/(1 − μ) (points)")

    def spread(a: dict) -> float:  # The largest |log10| ratio of a μ's best step to μ = 0's.
        steps = a["best_effective_step"]
        return max(abs(np.log10(s / steps["0.0"])) for mu, s in steps.items() if mu != "0.0")
    same_best = mean_effect(seed_values(analysis, spread).values(),
                            name="largest |log10 best η/(1 − μ) ÷ μ = 0's| (decades)")
    mismatch = mean_effect(seed_values(analysis, lambda a: max(abs(np.log10(m["ratio"])) for m in
                                                               a["matches"].values())).values(),
                           name="largest |log10 matched η ÷ predicted η| (decades)")
    steps = analysis["best_effective_step"]
    peaks = ", ".join(f"μ={mu}: {100 * a:.1f} %" for mu, a in analysis["peak_accuracy"].items())
    pooled = ("over every seed's mean curve, best η/(1 − μ): "
              + ", ".join(f"μ={mu}: {s:.3g}" for mu, s in steps.items()) + f"; peak test accuracy {peaks}")
    tolerance = (f"margin ±{margin:.3g} decades: {STEP_MARGIN:g} steps of the η grid (×{10 ** grid_step:.2f} a step), "
                 "the grid's resolution")
    return [
        ("Against η/(1 − μ) the accuracy curves of the momenta lie closer to μ = 0's than against η (Figure 4)",
         verdict(collapse, "greater", comparability=budget),
         "mean |Δ accuracy| to the μ = 0 curve, per seed, against η → against η/(1 − μ): "
         + ", ".join(f"seed {s}: {raw[s]:.2f} → {effective[s]:.2f} points" for s in raw)),
        ("The best step η/(1 − μ) is the same for every μ (Figure 4)",
         verdict(same_best, "equivalent", margin=margin, comparability=budget), f"{pooled}; {tolerance}"),
        ("The η matching the baseline's early loss curve is ≈ η_base (1 − μ)/(1 − μ_base) (appendix B)",
         verdict(mismatch, "equivalent", margin=margin, comparability=budget),
         f"baseline μ={analysis['baseline']['momentum']} at each seed's best η; over every seed's mean curve "
         + ", ".join(f"μ={mu}: matched η={m['matched_lr']:.3g}, predicted {m['predicted_lr']:.3g}"
                     for mu, m in analysis["matches"].items()) + f"; {tolerance}"),
    ]


def plot(analysis: dict, records: list[dict], path: Path) -> None:
    lrs = np.array(analysis["learning_rates"])
    fig, axes = new_figure(1, 3, figsize=(15, 4.2))
    for mu in analysis["momenta"]:
        acc = np.array(analysis["accuracy"][str(mu)], dtype=float)
        for ax, x in ((axes[0], lrs), (axes[1], lrs / (1 - mu))):
            line, = ax.semilogx(x, 100 * acc, "o-", label=f"μ={mu}")
            dead = ~np.isfinite(acc)
            ax.semilogx(x[dead], np.full(dead.sum(), 10.0), "x", color=line.get_color())  # At chance level.
    axes[0].set(xlabel="learning rate η", ylabel="test accuracy (%)", title="Test accuracy vs η (seed 001 Fig. 4)")
    axes[1].set(xlabel="step size η/(1 − μ)", ylabel="test accuracy (%)", title="… vs η/(1 − μ); × diverged (at 10 %)")
    early = analysis["early_epochs"]
    base = analysis["baseline"]
    if base["learning_rate"]:
        curves = [(BASELINE_MOMENTUM, base["learning_rate"], "baseline")]
        curves += [(float(mu), m["matched_lr"], "matched") for mu, m in analysis["matches"].items()]
        for mu, lr, kind in curves:
            c = mean_losses(records, mu, lr, early)
            axes[2].plot(np.arange(1, early + 1), c, "o-", label=f"{kind}: μ={mu}, η={lr:.3g}")
    axes[2].set(xlabel="epoch", ylabel="training loss (epoch mean)", yscale="log",
                title="Loss curves matched to the baseline (app. B)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def write_section(analysis, records, grid: Setting, output: Path, seconds: float, command: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    plot(analysis, records, output / "lr_momentum.png")
    write_atomically(output / "lr_momentum.json", json.dumps({"analysis": analysis, "runs": records}))
    momenta = analysis["momenta"]
    header = "| η | " + " | ".join(f"μ={mu}: test acc. (%)" for mu in momenta) + " |"
    rows = [header, "|---" * (len(momenta) + 1) + "|"]
    for i, lr in enumerate(analysis["learning_rates"]):
        cells = [analysis["accuracy"][str(mu)][i] for mu in momenta]
        rows.append(f"| {lr:.3g} | " + " | ".join("diverged" if not np.isfinite(c) else f"{100 * c:.1f}"
                                                  for c in cells) + " |")
    subset = f"a {grid.train_subset}-example subset of " if grid.train_subset else ""
    text = "\n".join([
        "## Learning rate and momentum (§3.2, Figure 4; appendix B)", "",
        f"Command: `{command}`. The runs took {sum(r['wall_seconds'] for r in records) / 60:.1f} min of wall time "
        f"in all on this machine (2 CPU cores shared with other work; the sum of their `wall_seconds`); this "
        f"invocation, which reuses finished run directories, took {seconds / 60:.1f} min.", "",
        f"{len(records)} runs: `mlp` (256, 128) on {subset}MNIST-1D, batch 64, {grid.epochs} epochs at a constant η, "
        f"no weight decay, heavy ball μ ∈ {{{', '.join(str(m) for m in momenta)}}}, seeds {list(grid.seeds)}; each "
        "cell is the mean test accuracy over the seeds that did not diverge. The paper's network (VGG-13-BN on "
        "CIFAR-10) is out of reach on 2 CPU cores; MNIST-1D is small but far from solved by an MLP (a "
        "generalization gap of ~30 points), so the step size has room to matter.", "",
        *rows, "", "![learning rate and momentum](lr_momentum.png)", "", *claim_lines(verdicts(analysis))])
    write_atomically(output / "lr_momentum.md", text)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path, train: bool = True) -> list[Claim]:
    """Trains (or resumes; with `train` false, only reads) every point, writes the section and returns its claims."""
    started = time.time()
    grid = setting(smoke, seed)
    lr_sweep = sweep(grid, work_dir)
    if train:
        print(f"[lr_momentum] {' '.join(lr_sweep.command()[1:])}", flush=True)
        lr_sweep.run()  # A failed point fails the part: its log is in the sweep directory.
    else:
        print("[lr_momentum] --notrain: reading the runs that finished in --work_dir, training nothing", flush=True)
    records = read_points(lr_sweep)
    for record in records:
        print(f"[lr_momentum] {Point(record['momentum'], record['learning_rate'], record['seed']).name}: test "
              f"accuracy {record['test_accuracy']}" + (" (diverged)" if record["diverged"] else ""), flush=True)
    analysis = analyse(records, grid)
    write_section(analysis, records, grid, output, time.time() - started, command)
    return verdicts(analysis)
