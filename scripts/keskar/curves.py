"""Seed 003 Figure 2: training and test accuracy per epoch of SB and LB, read from the table part's runs (the same
sweep, reused: this part trains nothing of its own).

Each run's history.csv has, per epoch, the clean training accuracy the stop's check read (`stop_clean_accuracy`:
inference mode, unaugmented, a fixed sample of up to 10,000 training examples) and the test accuracy
(`val_accuracy`, the whole test split, `--eval_every=1`).
Claim (the paper's, §2.2): the generalization gap is not over-fitting: LB's test accuracy does not peak and then
decay. Tested per batch size as the drop of the test accuracy from its best epoch to the last one, in points, whose
95 % CI must lie below OVERFIT_MARGIN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from reproduction import Claim

from keskar.common import describe, group, read_rows, start_part, stopped_alike, write_part
from tfregimes.analysis import mean_effect, verdict
from tfregimes.base.run_dir import RunDirectory
from tfregimes.report import style

OVERFIT_MARGIN = 0.5  # Points of test accuracy: a smaller drop from the best epoch is not over-fitting.
TRAIN, TEST = "stop_clean_accuracy", "val_accuracy"


def curve(run_dir: Path) -> dict[str, list[float]]:
    """{epoch, train, test}: the run's per-epoch clean training and test accuracy (history.csv), NaN where absent."""
    path = RunDirectory(run_dir).history_path
    history = pd.read_csv(path) if path.exists() else pd.DataFrame({"epoch": []})
    column = lambda name: pd.to_numeric(history.get(name, pd.Series(np.nan, index=history.index)),  # noqa: E731
                                        errors="coerce").astype(float).tolist()
    return {"epoch": history["epoch"].astype(int).tolist(), "train": column(TRAIN), "test": column(TEST)}


def drop_from_best(points: dict[str, list[float]]) -> float:
    """Test accuracy at its best epoch minus at the last epoch, in points (NaN without test values)."""
    test = np.array(points["test"], dtype=float)
    test = test[np.isfinite(test)]
    return float(100 * (test.max() - test[-1])) if len(test) else float("nan")


def claims(rows: list[dict], curves: dict[str, dict[str, list[float]]], batches: dict[str, int]) -> list[Claim]:
    """Per batch size (SB, LB): the mean drop of the test accuracy from its best epoch, claimed below the margin."""
    out = []
    for name, batch in batches.items():
        runs = group(rows, batch_size=batch)
        drops = [drop_from_best(curves[r["run"]]) for r in runs if r["run"] in curves]
        effect = mean_effect(drops, name=f"mean drop of {name}'s test accuracy from its best epoch − "
                                          f"{OVERFIT_MARGIN:g} (points)", reference=OVERFIT_MARGIN)
        out.append((f"{name} does not over-fit: its test accuracy does not fall after its best epoch (Figure 2)",
                    verdict(effect, "less", comparability=stopped_alike(runs)),
                    "drop from the best epoch per run (points): " + ", ".join(f"{d:.2f}" for d in drops)
                    + f"; claimed below {OVERFIT_MARGIN:g} points"))
    return out


def plot(rows: list[dict], curves: dict[str, dict[str, list[float]]], batches: dict[str, int], path: Path) -> None:
    fig, axes = style.new_figure(len(batches), "Training and test accuracy per epoch (seed 003 Fig. 2)", width=5)
    for axis, (name, batch) in zip(axes, batches.items()):
        for i, r in enumerate(group(rows, batch_size=batch)):
            points = curves.get(r["run"])
            if not points:
                continue
            axis.plot(points["epoch"], 100 * np.array(points["train"]), "-", color="tab:blue", alpha=0.8,
                      label="train (clean)" if i == 0 else None)
            axis.plot(points["epoch"], 100 * np.array(points["test"]), "--", color="tab:red", alpha=0.8,
                      label="test" if i == 0 else None)
        axis.set(title=f"{name} (batch {batch:,}; one line per seed)", xlabel=style.EPOCH_LABEL,
                 ylabel="accuracy (%)")
        style.integer_epochs(axis)
        if axis.lines:
            axis.legend(loc="lower right")
    drawn = [axis.get_ylim() for axis in axes if axis.lines]
    for axis in axes:  # One accuracy scale for SB and LB, as the paper's panels compare them.
        if drawn:
            axis.set_ylim(min(low for low, _ in drawn), max(high for _, high in drawn))
    style.save(fig, path)


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[Claim]:
    started, config, commands = start_part("curves", smoke=smoke, seed=seed, work_dir=work_dir, train=train)
    rows = read_rows(work_dir / "sb_lb")
    batches = {"SB": config.small_batch, "LB": config.large_batch}
    curves = {r["run"]: curve(work_dir / "sb_lb" / r["run"]) for r in group(rows)}

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return ["## Training and test accuracy per epoch (Figure 2)", "",
                f"Command: `{record['command']}` (the table part's runs, reused; no training of its own). "
                "Training accuracy: the clean pass the stop reads every epoch; test accuracy: the whole test split "
                "every epoch. The runs stop at the loss target, so the curves end there, as the table's minima do.",
                "", describe(config), ""]

    return write_part(output, "curves", work_dir=work_dir, started=started, command=command, train=train,
                      analysis={"drops": {r: drop_from_best(c) for r, c in curves.items()}}, runs=rows,
                      claims=claims(rows, curves, batches), plot=lambda path: plot(rows, curves, batches, path),
                      figure=("curves.png", "training and test accuracy per epoch"), extra={"curves": curves},
                      section=section)
