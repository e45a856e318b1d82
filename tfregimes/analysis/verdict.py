"""The one verdict rule: what an effect's confidence interval says about a claim.

- `supports`: the 95 % CI of the claimed effect excludes 0 in the claimed direction;
- `contradicts`: it excludes 0 the other way;
- `inconclusive`: it includes 0;
- `not comparable`: the runs compared did not all reach the same stop target, or n < 3 per side.

A claim of no difference ("equivalent", with a margin δ the caller states) reads the same interval against ±δ:
`supports` when the CI lies inside (−δ, δ), `contradicts` when it lies wholly outside, `inconclusive` otherwise.
Every verdict carries the rule and its inputs, and prints them beside its word.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd

from tfregimes.analysis.estimates import Effect

SUPPORTS, CONTRADICTS, INCONCLUSIVE, NOT_COMPARABLE = "supports", "contradicts", "inconclusive", "not comparable"
WORDS = (SUPPORTS, CONTRADICTS, INCONCLUSIVE, NOT_COMPARABLE)
DIRECTIONS = ("greater", "less", "equivalent")  # The claimed effect is > 0, < 0, or within ±margin of 0.
MIN_N = 3  # Fewer values per side: not comparable.


@dataclasses.dataclass(frozen=True)
class Comparability:
    """Whether the runs behind an effect may be compared, and why (printed with the verdict)."""
    ok: bool
    why: str


def same_stop_target(runs: pd.DataFrame) -> Comparability:
    """Comparable when every run in `runs` (rows of `tfregimes.results.collect`) was trained with the same stop
    criterion and target (`--stop_at_train_loss` or `--stop_at_train_accuracy`, read on the clean training set)
    and reached it; minima are compared at equal training loss, never after the same number of epochs."""
    if len(runs) == 0:
        return Comparability(False, "no runs")
    if "stop/criterion" not in runs.columns or runs["stop/criterion"].isna().any():
        return Comparability(False, "not every run was trained to a stop target (--stop_at_train_loss or "
                                    "--stop_at_train_accuracy)")
    targets = {(c, float(t)) for c, t in zip(runs["stop/criterion"], runs["stop/target"])}
    if len(targets) > 1:
        listed = ", ".join(f"{c} {t:g}" for c, t in sorted(targets))
        return Comparability(False, f"the runs have different stop targets ({listed})")
    (criterion, target), = targets
    bound = f"{criterion} {'<=' if criterion == 'train_loss' else '>='} {target:g}"
    reached = runs["stop/reached_target"].fillna(False).astype(bool)
    if not reached.all():
        return Comparability(False, f"{int((~reached).sum())} of {len(runs)} runs did not reach {bound}")
    return Comparability(True, f"all {len(runs)} runs reached {bound} on the clean training set")


def comparable(why: str) -> Comparability:
    """For claims that are not about minima (learning curves, a simulation): the caller says why they compare."""
    return Comparability(True, why)


def rule_text(direction: str, margin: float | None = None, confidence: float = 0.95) -> str:
    """The rule as the verdict prints it, at the effect's confidence (95 % unless the caller widened it, e.g. for
    a comparison picked among several)."""
    ci = f"{100 * confidence:g} % CI"
    if direction == "greater":
        return f"supports if the {ci} lies above 0, contradicts if below, inconclusive if it includes 0"
    if direction == "less":
        return f"supports if the {ci} lies below 0, contradicts if above, inconclusive if it includes 0"
    return (f"supports if the {ci} lies inside ±{margin:g}, contradicts if wholly outside it, inconclusive "
            "otherwise")


@dataclasses.dataclass(frozen=True)
class Verdict:
    word: str  # One of WORDS.
    effect: Effect
    direction: str
    margin: float | None
    comparability: Comparability
    reason: str  # Which clause of the rule gave the word.

    def text(self, scale: float = 1.0, digits: int = 3) -> str:
        """'supports: mean difference +1.2 (95 % CI ...; t, 4 df; n = 5); claimed > 0; rule: ...; compared: ...'."""
        claimed = {"greater": "> 0", "less": "< 0"}.get(self.direction) or f"within ±{self.margin:g}"
        return (f"{self.word}: {self.effect.text(scale, digits)}; claimed {claimed}; {self.reason}; "
                f"compared: {self.comparability.why}")

    def as_dict(self) -> dict[str, Any]:
        return {"word": self.word, "effect": self.effect.as_dict(), "direction": self.direction,
                "margin": self.margin, "comparable": self.comparability.ok, "compared": self.comparability.why,
                "reason": self.reason}


def verdict(effect: Effect, direction: str, *, margin: float | None = None,
            comparability: Comparability = Comparability(True, "not stated by the caller"),
            min_n: int = MIN_N) -> Verdict:
    """The rule's word for `effect` under the claim that it is `direction` ("greater": > 0, "less": < 0,
    "equivalent": within ±margin). An exact (deterministic) effect needs no n."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: must be one of {', '.join(DIRECTIONS)}")
    if direction == "equivalent" and not (margin is not None and margin > 0):
        raise ValueError("an 'equivalent' claim needs margin > 0: the largest effect that counts as no difference")

    def made(word: str, reason: str) -> Verdict:
        return Verdict(word, effect, direction, margin, comparability, reason)

    rule = f"rule: {rule_text(direction, margin, effect.confidence)}; not comparable if the runs differ in their " \
           f"stop target or n < {min_n} per side"  # Printed with every word, so a reader can check it.
    if not comparability.ok:
        return made(NOT_COMPARABLE, f"not comparable: the runs compared differ in how far they were trained; {rule}")
    if not effect.exact and effect.n < min_n:
        return made(NOT_COMPARABLE, f"not comparable: n = {effect.n} < {min_n} per side; {rule}")
    low, high = effect.low, effect.high
    if math.isnan(low) or math.isnan(high):
        return made(NOT_COMPARABLE, f"not comparable: no interval could be computed; {rule}")
    if direction == "equivalent":
        if -margin < low and high < margin:
            return made(SUPPORTS, rule)
        if low >= margin or high <= -margin:
            return made(CONTRADICTS, rule)
        return made(INCONCLUSIVE, rule)
    sign = 1.0 if direction == "greater" else -1.0
    lower, upper = sorted((sign * low, sign * high))  # The interval in the claimed direction's frame.
    if lower > 0:
        return made(SUPPORTS, rule)
    if upper < 0:
        return made(CONTRADICTS, rule)
    return made(INCONCLUSIVE, rule)
