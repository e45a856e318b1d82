"""LARS tuned as fairly as the other regimes were chosen: a grid of learning rates × warm-up lengths, each point run
with 3 seeds on 80 % of the training set (`--validation_split=0.2` holds the rest out, drawn by the seed) to the
same clean-loss target and cap as every run, and ranked by its mean accuracy on the held-out examples. The test
split is never read to choose. A run that diverged scores 0 (it chose nothing useful); ties go to the smaller rate.
"""

from __future__ import annotations

from tfregimes.analysis import summarize


def points(runs: list[dict]) -> dict[tuple[float, int], list[dict]]:
    """{(learning rate, warm-up epochs): its runs} of the tuning sweep."""
    out: dict[tuple[float, int], list[dict]] = {}
    for r in runs:
        out.setdefault((float(r["learning_rate"]), int(r["warmup_epochs"])), []).append(r)
    return dict(sorted(out.items()))


def scores(runs: list[dict]) -> dict[tuple[float, int], list[float]]:
    """Per grid point, the held-out accuracy (%) of each seed (0 for a diverged run)."""
    return {point: [0.0 if r["diverged"] or r["validation_accuracy"] is None else 100 * r["validation_accuracy"]
                    for r in rs] for point, rs in points(runs).items()}


def choose(runs: list[dict]) -> tuple[float, int] | None:
    """The (learning rate, warm-up) of the highest mean held-out accuracy; None before the tuning has run."""
    ranked = {point: summarize(values).mean for point, values in scores(runs).items()}
    if not ranked:
        return None
    return max(ranked, key=lambda point: (ranked[point], -point[0], -point[1]))


def rows(runs: list[dict]) -> list[str]:
    """The grid as a table: held-out accuracy per point (mean ± std over seeds), target reached, epochs run."""
    chosen = choose(runs)
    out = ["| LARS η | warm-up epochs | held-out accuracy (%), mean ± std | seeds reaching the target | epochs run "
           "| |", "|---|---|---|---|---|---|"]
    for point, rs in points(runs).items():
        values = scores(runs)[point]
        out.append(f"| {point[0]:g} | {point[1]} | {summarize(values).text(digits=3)} | "
                   f"{sum(r['reached_target'] for r in rs)} of {len(rs)} | "
                   f"{', '.join(str(r['epochs_run']) for r in rs)} | {'**chosen**' if point == chosen else ''} |")
    return out
