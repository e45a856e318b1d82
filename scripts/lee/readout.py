"""A second read-out of the same runs at a higher common clean training loss, `READOUT_LOSS`.

A run stopped by `--stop_at_train_loss=T` is exactly the run trained without the stop, cut at the first epoch whose
clean training loss is at most T: the check reads the weights and changes nothing, and the runs are deterministic.
Every run logs that loss at every epoch (history.csv `stop_clean_loss`), with the test accuracy (`val_accuracy`, the
same inference pass as metrics.json's) and the margins, so the runs can be read at any T above the one they trained
to, as if they had stopped there. This read-out is post hoc: its target was chosen after the main one (0.1) turned
out to be out of reach for some runs at the epoch cap (the Goyal large batch in 2 of 5 seeds, the short exploration
lengths, LARS); 0.2 is twice it. It is shown beside the main verdicts, which it does not replace.
"""

from __future__ import annotations

import pandas as pd

READOUT_LOSS = 0.2


def at_loss(run: dict, target: float) -> dict:
    """`run` as if it had stopped at `target`: its first epoch whose clean loss is at most `target`, the test
    accuracy, clean loss, curves and exploration decisions up to it; `reached_target` False (the run otherwise as
    it is) when no epoch got there or it diverged."""
    curves = run["curves"]
    losses = curves.get("stop_clean_loss", [])
    hit = next((i for i, loss in enumerate(losses) if loss is not None and loss <= target), None)
    if run["diverged"] or hit is None:
        return {**run, "reached_target": False}
    epoch = curves["epoch"][hit]
    cut = {name: values[:hit + 1] for name, values in curves.items() if isinstance(values, list)}
    cut["lr_events"] = {e: text for e, text in curves["lr_events"].items() if e <= epoch}
    decay = run["decay_epoch"] if run["decay_epoch"] is not None and run["decay_epoch"] <= epoch else None
    flat = run["flat_epoch"] if run["flat_epoch"] is not None and run["flat_epoch"] <= epoch else None
    return {**run, "reached_target": True, "epochs_run": epoch, "test_accuracy": curves["val_accuracy"][hit],
            "train_loss": losses[hit], "decay_epoch": decay, "flat_epoch": flat, "curves": cut}


def runs_at(runs: dict, target: float) -> dict:
    """{group: [run at `target`, ...]} of {group: [run, ...]}."""
    return {group: [at_loss(r, target) for r in rs] for group, rs in runs.items()}


def frame_at(runs: dict, target: float, key: str) -> pd.DataFrame:
    """The `collect` columns `tfregimes.analysis.same_stop_target` reads, for runs read at `target`, with each
    run's group under `key` (`regime`, or `extra_exploration_epochs`)."""
    return pd.DataFrame([{key: group, "seed": r["seed"], "stop/criterion": "train_loss", "stop/target": target,
                          "stop/reached_target": r["reached_target"]} for group, rs in runs.items() for r in rs],
                        columns=[key, "seed", "stop/criterion", "stop/target", "stop/reached_target"])
