"""Seed 001 §3.2 Figure 4 and appendix B at CPU scale: is generalization set by the step size η/(1 − μ)?

Our setting (the paper trains VGG-13-BN on CIFAR-10, appendix C.4; that needs GPUs): MNIST-1D (generated offline,
4,000 / 1,000 examples), tfregimes' `mlp` (256, 128), batch 64, 20 epochs at a constant learning rate, no weight
decay, heavy ball μ ∈ {0, 0.5, 0.9}, η on one 11-point log grid over [1e-3, 10^0.5] shared by every μ, 2 seeds.

- Figure 4's claim: the test-accuracy-against-η curves of the momenta are shifted copies of each other, the shift
  being the factor 1/(1 − μ) by which momentum multiplies the step; so plotted against η/(1 − μ) they coincide and
  the best η/(1 − μ) is the same for every μ.
- Appendix B: for each μ, the η whose training-loss curve over the first half of training is closest in L2 to the
  baseline's (μ = 0.9 at its best η) is roughly η_base (1 − μ)/(1 − μ_base).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from reproduction import claim_lines, new_figure, save_figure

from tfregimes.base.run_dir import write_atomically
from tfregimes.training import train_and_evaluate
from tfregimes.training.config import RunConfig

MOMENTA = (0.0, 0.5, 0.9)  # Figure 4's three momenta.
BASELINE_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class Point:
    momentum: float
    learning_rate: float
    seed: int

    @property
    def name(self) -> str:
        return f"mu{self.momentum}_lr{self.learning_rate:.4g}_seed{self.seed}"


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
    return Setting(MOMENTA, tuple(float(x) for x in np.logspace(-3, 0.5, 11)), (seed, seed + 1), epochs=20,
                   train_subset=0)


def run_config(point: Point, grid: Setting, work_dir: Path) -> RunConfig:
    return RunConfig(dataset="mnist1d", model="mlp", epochs=grid.epochs, batch_size=64, optimizer="sgd",
                     learning_rate=point.learning_rate, momentum=point.momentum, weight_decay=0.0,
                     lr_schedule="constant", lr_boundaries=(), train_subset=grid.train_subset, seed=point.seed,
                     model_dir=str(work_dir / point.name), verbose=0)


def train_point(point: Point, grid: Setting, work_dir: Path) -> dict:
    """Trains (or resumes, or reads back) one run; its final metrics and per-epoch training losses."""
    import keras
    result = train_and_evaluate(run_config(point, grid, work_dir))
    keras.backend.clear_session()
    with open(result.run_dir.history_path) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    metrics = result.metrics
    return {**dataclasses.asdict(point), "diverged": bool(metrics["diverged"]), "epoch_losses": losses,
            "test_accuracy": metrics["test_accuracy"], "train_accuracy": metrics["train_accuracy"],
            "wall_seconds": metrics["wall_seconds"]}


def mean_accuracy(records: list[dict], momentum: float, learning_rates) -> np.ndarray:
    """Test accuracy per η averaged over the seeds that did not diverge (NaN where every seed diverged)."""
    out = []
    for lr in learning_rates:
        values = [r["test_accuracy"] for r in records if r["momentum"] == momentum and r["learning_rate"] == lr
                  and not r["diverged"]]
        out.append(float(np.mean(values)) if values else float("nan"))
    return np.array(out)


def curve_gap(x_ref, y_ref, x, y) -> float:
    """Mean |y − y_ref(x)| over the points of (x, y) inside the finite part of the reference curve (linear in x)."""
    ok_ref = np.isfinite(y_ref)
    xr, yr = np.asarray(x_ref)[ok_ref], np.asarray(y_ref)[ok_ref]
    inside = np.isfinite(y) & (x >= xr.min()) & (x <= xr.max())
    return float(np.mean(np.abs(y[inside] - np.interp(x[inside], xr, yr)))) if inside.any() else float("nan")


def mean_losses(records, momentum, lr, epochs: int) -> np.ndarray | None:
    runs = [r["epoch_losses"][:epochs] for r in records if r["momentum"] == momentum and r["learning_rate"] == lr
            and not r["diverged"] and len(r["epoch_losses"]) >= epochs]
    return np.mean(runs, axis=0) if runs else None


def analyse(records: list[dict], grid: Setting) -> dict:
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


def verdicts(analysis: dict) -> list[tuple[str, str, str]]:
    grid_step = analysis["learning_rates"][1] / analysis["learning_rates"][0]
    steps = analysis["best_effective_step"]
    spread = max(steps.values()) / min(steps.values()) if steps else float("nan")
    gaps = analysis["curve_gap"]
    collapse = all(g["effective"] < g["raw"] for g in gaps.values()) if gaps else False
    same_best = spread <= grid_step * 1.01
    out = [("Test accuracy is set by the step η/(1 − μ): the curves coincide against η/(1 − μ) (Figure 4)",
            "holds" if collapse and same_best else ("partly" if collapse or same_best else "does not hold"),
            "best η/(1 − μ): " + ", ".join(f"μ={mu}: {s:.3g}" for mu, s in steps.items())
            + f" (spread ×{spread:.2f}; grid step ×{grid_step:.2f}); peak test accuracy "
            + ", ".join(f"μ={mu}: {100 * a:.1f} %" for mu, a in analysis["peak_accuracy"].items())
            + "; mean |Δ accuracy| to the μ = 0 curve against η "
            "→ against η/(1 − μ): " + ", ".join(f"μ={mu}: {g['raw']:.3f} → {g['effective']:.3f}"
                                               for mu, g in gaps.items()))]
    matches = analysis["matches"]
    ratios = [m["ratio"] for m in matches.values()]
    within = all(1 / (grid_step * 1.01) <= r <= grid_step * 1.01 for r in ratios) if ratios else False
    out.append(("The η matching the baseline's early loss curve is ≈ η_base (1 − μ)/(1 − μ_base) (appendix B)",
                "holds" if within else "does not hold",
                f"baseline μ={analysis['baseline']['momentum']}, "
                f"η={analysis['baseline']['learning_rate']:.3g} (its best); "
                + ", ".join(f"μ={mu}: matched η={m['matched_lr']:.3g}, predicted {m['predicted_lr']:.3g} "
                            f"(ratio {m['ratio']:.2f})" for mu, m in matches.items())))
    return out


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


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path) -> list[tuple[str, str, str]]:
    started = time.time()
    grid = setting(smoke, seed)
    points = [Point(mu, lr, s) for mu in grid.momenta for lr in grid.learning_rates for s in grid.seeds]
    records = []
    for i, point in enumerate(points):
        records.append(train_point(point, grid, work_dir))
        print(f"[lr_momentum] {i + 1}/{len(points)} {point.name}: test accuracy {records[-1]['test_accuracy']}"
              f"{' (diverged)' if records[-1]['diverged'] else ''}", flush=True)
    analysis = analyse(records, grid)
    write_section(analysis, records, grid, output, time.time() - started, command)
    return verdicts(analysis)
